/* A program that embeds Python and takes malloc's address, built without PIE: its own PLT entry
 * then is malloc's address for every object in the process, dlsym(RTLD_DEFAULT) included, as in
 * Debian's python3 binaries. Runs the Python file named by argv[1]. */
#include <Python.h>
#include <stdio.h>
#include <stdlib.h>

/* An absolute address taken in code (not a data relocation): the linker must then make the PLT
 * entry malloc's one address. */
__attribute__((noinline)) void* (*malloc_address(void))(size_t) { return &malloc; }

int main(int argc, char** argv) {
    if (argc != 2) return 2;
    free(malloc_address()(16));
    Py_Initialize();
    FILE* file = fopen(argv[1], "r");
    if (!file) return 3;
    int failed = PyRun_SimpleFileEx(file, argv[1], 1);
    return Py_FinalizeEx() < 0 || failed ? 1 : 0;
}
