// The tracker lock. Taken once per allocation event, so its uncontended cost is what counts: one
// compare-and-swap to lock and a plain release store to unlock, inline. An atomic read-modify-write
// costs about 5 ns here (a virtual machine's core), and an event without the lock's second one is
// that much cheaper: with every Python object traced, events come every few tens of nanoseconds.
// pthread_mutex_lock and _unlock would add two calls through the PLT and a second atomic.
//
// The price of the plain unlock is that it cannot tell whether someone sleeps: a waiter spins
// briefly (events hold the lock for well under a microsecond), then sleeps on the futex with a
// short timeout and tries again, instead of being woken. It sleeps only when the holder was
// preempted inside the lock, and then a wait of tens of microseconds is no loss. try_lock and
// unlock are async-signal-safe, which the fatal-signal flush relies on.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <time.h>

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
    void unlock() { d_state.store(0, std::memory_order_release); }

  private:
    __attribute__((noinline)) void lock_contended() {
        for (int spin = 0; spin < 200; ++spin) {
            cpu_relax();
            if (acquired()) return;
        }
        // Nobody wakes a sleeper (unlock does not look), so each sleep is short; FUTEX_WAIT returns
        // at once if the lock was freed before it got to sleep.
        const struct timespec nap = {0, 20 * 1000};
        while (!acquired()) {
            syscall(SYS_futex, reinterpret_cast<int*>(&d_state), FUTEX_WAIT_PRIVATE, 1, &nap, nullptr, 0);
        }
    }
    bool acquired() {
        int expected = 0;
        return d_state.load(std::memory_order_relaxed) == 0 &&
               d_state.compare_exchange_weak(expected, 1, std::memory_order_acquire);
    }

    std::atomic<int> d_state{0};
    static_assert(sizeof(std::atomic<int>) == sizeof(int), "the futex word is the atomic itself");
};

}  // namespace memprof
