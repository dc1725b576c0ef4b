// An allocator for Python's RAW domain whose blocks are 8 bytes off 16-byte alignment (as
// jemalloc's small size classes can be), to check that captures keep every address bit.
#include <Python.h>
#include <stdint.h>

static PyMemAllocatorEx g_previous;

// malloc's blocks are 16-byte aligned, so a pointer 8 bytes off is one of ours.
static int is_ours(void* ptr) { return ((uintptr_t)ptr & 15) == 8; }

static void* odd_malloc(void* ctx, size_t size) {
    (void)ctx;
    char* block = g_previous.malloc(g_previous.ctx, size + 8);
    return block ? block + 8 : NULL;
}

static void* odd_calloc(void* ctx, size_t count, size_t size) {
    (void)ctx;
    if (size && count > (SIZE_MAX - 8) / size) return NULL;
    char* block = g_previous.calloc(g_previous.ctx, 1, count * size + 8);
    return block ? block + 8 : NULL;
}

static void odd_free(void* ctx, void* ptr) {
    (void)ctx;
    if (ptr && is_ours(ptr)) ptr = (char*)ptr - 8;
    g_previous.free(g_previous.ctx, ptr);
}

static void* odd_realloc(void* ctx, void* ptr, size_t size) {
    (void)ctx;
    if (ptr && !is_ours(ptr)) return g_previous.realloc(g_previous.ctx, ptr, size);
    char* block = g_previous.realloc(g_previous.ctx, ptr ? (char*)ptr - 8 : NULL, size + 8);
    return block ? block + 8 : NULL;
}

// Installed for the rest of the process: blocks it handed out must never reach plain free().
void install_odd_raw_allocator(void) {
    PyMemAllocatorEx odd = {NULL, odd_malloc, odd_calloc, odd_realloc, odd_free};
    PyMem_GetAllocator(PYMEM_DOMAIN_RAW, &g_previous);
    PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &odd);
}
