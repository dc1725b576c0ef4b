// The tracker lock. Taken once per allocation event: uncontended, lock and unlock are one atomic
// instruction each, inline, where pthread_mutex_lock and _unlock are two calls through the PLT
// (with Python's allocators traced, about a sixth of an event's own instructions). Contended,
// a waiter spins briefly (events hold the lock for well under a microsecond), then sleeps on a
// futex: the three-state mutex of Drepper's "Futexes Are Tricky" (0 free, 1 held, 2 held with
// sleepers). try_lock and unlock are async-signal-safe, which the fatal-signal flush relies on.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace memprof {

inline void cpu_relax() {
#if defined(__x86_64__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

class EventMutex {
  public:
    void lock() {
        int expected = 0;
        if (__builtin_expect(d_state.compare_exchange_strong(expected, 1, std::memory_order_acquire), 1)) return;
        lock_contended();
    }
    bool try_lock() {
        int expected = 0;
        return d_state.compare_exchange_strong(expected, 1, std::memory_order_acquire);
    }
    void unlock() {
        if (__builtin_expect(d_state.exchange(0, std::memory_order_release) == 2, 0)) wake_one();
    }

  private:
    __attribute__((noinline)) void lock_contended() {
        for (int spin = 0; spin < 200; ++spin) {
            cpu_relax();
            int expected = 0;
            if (d_state.load(std::memory_order_relaxed) == 0 &&
                d_state.compare_exchange_weak(expected, 1, std::memory_order_acquire)) {
                return;
            }
        }
        // Marked "with sleepers" before sleeping, so the holder's unlock wakes one.
        while (d_state.exchange(2, std::memory_order_acquire) != 0) {
            syscall(SYS_futex, reinterpret_cast<int*>(&d_state), FUTEX_WAIT_PRIVATE, 2, nullptr, nullptr, 0);
        }
    }
    __attribute__((noinline)) void wake_one() {
        syscall(SYS_futex, reinterpret_cast<int*>(&d_state), FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }

    std::atomic<int> d_state{0};
    static_assert(sizeof(std::atomic<int>) == sizeof(int), "the futex word is the atomic itself");
};

}  // namespace memprof
