# The seam between native/reader.h and Python: declarations only.
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdio cimport FILE
from libcpp cimport bool
from libcpp.map cimport map
from libcpp.pair cimport pair
from libcpp.string cimport string
from libcpp.vector cimport vector
from follower cimport Follower, FollowerEntry

cdef extern from "format.h" namespace "memprof":
    const char* kind_name(uint8_t kind)
    uint32_t kFormatVersion
    const char* kMagic
    uint8_t* put_varint(uint8_t* out, uint64_t value)

cdef extern from "decoder.h" namespace "memprof":
    size_t kHistogramBuckets
    size_t kAllocatorSlots

cdef extern from "reader.h" namespace "memprof":
    cdef struct FrameRecord:
        string function
        string file
        uint32_t first_line

    cdef struct NodeRecord:
        uint32_t parent
        uint32_t frame
        uint32_t line
        bool entry

    cdef struct NativeNodeRecord:
        uint32_t parent
        uint64_t address
        int32_t map
        bint eval

    cdef struct MapRecord:
        uint64_t start
        uint64_t end
        uint64_t load_base
        string path
        string build_id

    uint32_t kHybridStack
    uint32_t kLostLine

    cdef enum class ReadError(uint8_t):
        NONE
        CANNOT_OPEN
        NOT_A_CAPTURE
        TOO_SHORT
        NEWER_VERSION
        INVALID_VERSION
        CORRUPT_HEADER
        NOT_A_FILE
        HEADER_TOO_LONG
        HEADER_TOO_DEEP

    cdef struct StackRow:
        uint32_t stack
        uint64_t tid
        uint8_t allocator
        uint64_t bytes
        uint64_t count

    cdef struct IntervalRow:
        uint32_t stack
        uint64_t tid
        uint8_t allocator
        uint64_t allocated_ms
        int64_t freed_ms
        uint64_t bytes
        uint64_t count

    cdef struct TimelineRow:
        uint64_t ms
        uint64_t heap
        uint64_t rss

    cdef struct EventRow:
        uint64_t ms
        uint64_t tid
        uint64_t address
        uint64_t size
        uint32_t stack
        uint8_t allocator
        bool deallocation

    ctypedef enum View:
        PEAK
        LEAKS
        TEMPORARY
        TOTAL

    cdef cppclass Mark "memprof::Reader::Mark":
        uint64_t id
        string label
        uint64_t heap

    cdef cppclass Reader:
        Reader(uint64_t only_tid, bool temporal, uint32_t temporary_threshold) except +
        bool open(const string& path) except +
        bool read_some(size_t budget) except + nogil
        uint64_t bytes_read()
        uint64_t file_size()
        void set_read_step(size_t step)
        size_t input_buffer_capacity()
        bool feed_capture(const uint8_t* data, size_t len, size_t step) except + nogil
        void set_source(const string& source)
        bool header_done()
        const string& header_json()
        bool frame_done()
        ReadError read_error()
        string problem_text() except +
        bool feed(const uint8_t* data, size_t len) except + nogil
        FollowerEntry follower()
        bool follow_failed()
        void reset_window(uint64_t only_tid)
        void close_window()
        void set_dump(FILE* out)
        string error()
        uint64_t damaged_blocks()
        uint64_t lost_events()
        bool lost_tail()
        bool truncated()
        bool saw_trailer()
        uint64_t cut_bytes()
        uint64_t cut_block_bytes()
        uint64_t peak_bytes()
        uint64_t peak_ms()
        uint64_t current_bytes()
        uint64_t end_ms()
        uint64_t start_ms()
        uint64_t total_allocations()
        uint64_t total_bytes()
        uint64_t records()
        uint64_t unmatched_frees()
        vector[StackRow] rows(View view, bool merge_threads, bool merge_allocators) except +
        vector[IntervalRow] intervals() except +
        vector[TimelineRow] timeline()
        vector[FrameRecord] frames()
        vector[NodeRecord] nodes()
        vector[NativeNodeRecord] native_nodes()
        vector[MapRecord] maps()
        vector[pair[uint32_t, uint32_t]] stack_pairs()
        uint16_t format_version()
        size_t native_nodes_at_window()
        map[uint64_t, string] thread_names()
        vector[uint64_t] threads_seen()
        const uint64_t* allocator_counts()
        const uint64_t* allocator_bytes()
        const uint64_t* histogram()
        vector[Mark] marks()
        uint64_t window_records()
        void set_event_log(bool on)
        vector[EventRow] take_events()

cdef extern from "capture_writer.h" namespace "memprof":
    int write_window_capture(const Reader& reader, const string& path, const string& header_json,
                             const string& window, size_t frames, size_t nodes, size_t native_nodes,
                             string* error) except + nogil
    int write_aggregated_capture(const Reader& reader, const string& path, const string& header_json,
                                 bint whole, string* error) except + nogil

cdef extern from "hybrid_locate.h" namespace "memprof":
    cdef cppclass HybridCall "memprof::HybridLocator::Call":
        uint64_t address
        int32_t map
        bint eval

    uint8_t kNoFrame "memprof::HybridLocator::kNoFrame"
    uint8_t kPythonFrame "memprof::HybridLocator::kPythonFrame"
    uint8_t kNativeCall "memprof::HybridLocator::kNativeCall"

    cdef cppclass LocationTotal "memprof::HybridLocator::LocationTotal":
        uint8_t kind
        uint32_t first
        uint32_t second
        uint64_t bytes
        uint64_t count

    cdef cppclass HybridLocator:
        HybridLocator(const Reader& reader) except +
        vector[HybridCall] calls()
        void classify(const string& flags, bint show_interpreter_frames) except +
        void place_python(const string& transitions) except +
        vector[LocationTotal] location_totals(View view) except +
        void assemble(uint32_t index, vector[uint32_t]* out) except +

    uint32_t kCallToken "memprof::HybridLocator::kCallToken"
