/* A library the tests compile with gcc: each function allocates with exactly one allocator,
 * so a test can say "exactly N bytes from this call". */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

void* alloc_malloc(size_t size) { return malloc(size); }
void* alloc_calloc(size_t count, size_t size) { return calloc(count, size); }
void* alloc_realloc(void* ptr, size_t size) { return realloc(ptr, size); }
void* alloc_posix_memalign(size_t size) {
    void* out = NULL;
    return posix_memalign(&out, 64, size) == 0 ? out : NULL;
}
void* alloc_aligned_alloc(size_t size) { return aligned_alloc(64, size); }
void* alloc_memalign(size_t size) { return memalign(64, size); }
void* alloc_valloc(size_t size) { return valloc(size); }
void* alloc_pvalloc(size_t size) { return pvalloc(size); }
void release(void* ptr) { free(ptr); }
void* alloc_mmap(size_t size) {
    void* out = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return out == MAP_FAILED ? NULL : out;
}
int release_mmap(void* ptr, size_t size) { return munmap(ptr, size); }

/* The address of malloc as this library's GOT holds it: our hook while tracking, libc's after. */
void* malloc_slot(void) { return (void*)&malloc; }

struct thread_job {
    size_t size;
    int count;
    const char* name;
    void* kept;
};

static void* thread_main(void* raw) {
    struct thread_job* job = raw;
    if (job->name) pthread_setname_np(pthread_self(), job->name);
    for (int i = 0; i < job->count; ++i) free(malloc(job->size));
    job->kept = malloc(job->size);
    return NULL;
}

/* Starts a native thread that allocates `count` blocks of `size` (freeing them) and keeps one. */
void* native_thread_allocate(size_t size, int count, const char* name) {
    struct thread_job job = {size, count, name, NULL};
    pthread_t thread;
    if (pthread_create(&thread, NULL, thread_main, &job) != 0) return NULL;
    pthread_join(thread, NULL);
    return job.kept;
}

struct crowd_job {
    pthread_barrier_t* start;
    size_t size;
    int count;
};

static void* crowd_main(void* raw) {
    struct crowd_job* job = raw;
    pthread_barrier_wait(job->start);
    for (int i = 0; i < job->count; ++i) free(malloc(job->size));
    return NULL;
}

/* Starts `threads` native threads (at most 64) at once, thread i allocating and freeing `count`
 * blocks of `size` + i: more threads than cores, so the tracker's lock is fought over and its
 * holder is preempted inside it. Returns how many threads ran. */
int native_threads_allocate(int threads, size_t size, int count) {
    pthread_t ids[64];
    struct crowd_job jobs[64];
    pthread_barrier_t start;
    if (threads < 1 || threads > 64 || pthread_barrier_init(&start, NULL, (unsigned)threads) != 0) return 0;
    int started = 0;
    for (; started < threads; ++started) {
        jobs[started] = (struct crowd_job){&start, size + (size_t)started, count};
        if (pthread_create(&ids[started], NULL, crowd_main, &jobs[started]) != 0) break;
    }
    if (started < threads) abort(); /* the barrier would wait forever for the missing ones */
    for (int i = 0; i < started; ++i) pthread_join(ids[i], NULL);
    pthread_barrier_destroy(&start);
    return started;
}

static void* run_callback(void* callback) {
    ((void (*)(void))callback)();
    return NULL;
}

/* Calls `callback` (a ctypes callback into Python) from a native thread that Python never saw. */
int call_in_native_thread(void (*callback)(void)) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, run_callback, (void*)callback) != 0) return -1;
    return pthread_join(thread, NULL);
}

static void* read_own_attributes(void* unused) {
    (void)unused;
    pthread_attr_t attributes;
    if (pthread_getattr_np(pthread_self(), &attributes) != 0) return NULL;
    pthread_attr_destroy(&attributes);
    return unused;
}

/* A new native thread whose first allocation happens inside pthread_getattr_np, which holds the
 * thread's own lock while it allocates (as Python 3.14 does in every new thread). */
int getattr_in_new_thread(void) {
    pthread_t thread;
    if (pthread_create(&thread, NULL, read_own_attributes, NULL) != 0) return -1;
    return pthread_join(thread, NULL);
}

static void allocate_before_fork(void) { free(malloc(4096)); }

/* An atfork prepare handler that allocates and frees, as OpenBLAS's does (it joins its threads).
 * Registered before the tracker's own, it runs after it, while the tracker holds its lock. */
int register_allocating_atfork(void) { return pthread_atfork(allocate_before_fork, NULL, NULL); }
