// The tracker's file sink: recorder.cc's LZ4 sink, whose writer thread is the tracker's own.
#include <signal.h>

#include "recorder.h"
#include "tracker.h"

namespace memprof {

// This thread's allocations (and the free of its own state when it exits, which may happen while
// the tracker lock is held: stop_thread) are never the program's.
// Asynchronous signals that flush the capture never land here: their handler waits for this thread.
void tracker::guard_sink_thread() {
    t_guard = true;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
}

std::unique_ptr<Sink> make_file_sink(int fd, const std::string& header_json, uint16_t version, bool threaded,
                                     std::string* error) {
    return make_lz4_file_sink(fd, header_json, version, threaded ? tracker::guard_sink_thread : nullptr, error);
}

}  // namespace memprof
