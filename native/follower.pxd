# The seam of native/follower.h: how the tracker's memory sink feeds a reader (both modules use it).
from libc.stdint cimport uint8_t

cdef extern from "follower.h" namespace "memprof":
    ctypedef void (*Follower)(void* context, const uint8_t* data, size_t len) noexcept nogil
    cdef struct FollowerEntry:
        Follower feed
        void* context
    const char* kFollowerCapsule
