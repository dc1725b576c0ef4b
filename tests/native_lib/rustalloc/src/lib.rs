// A tiny Rust cdylib (no crates) for the Rust-names tests: a Vec allocated under a method of a
// nested module, so that reports must show `rustalloc::arena::Builder::grow_buffer`, Vec's own
// functions, and lines of this file.
pub mod arena {
    pub struct Builder {
        pub chunks: Vec<Vec<u8>>,
    }

    impl Builder {
        #[inline(never)]
        pub fn grow_buffer(&mut self, size: usize) {
            let mut chunk: Vec<u8> = Vec::with_capacity(size); // LINE: with_capacity
            chunk.resize(size, 1);
            self.chunks.push(std::hint::black_box(chunk));
        }
    }
}

/// Allocates `times` buffers of `size` bytes and leaks them; returns the bytes allocated.
#[no_mangle]
pub extern "C" fn rustalloc_grow(size: usize, times: usize) -> usize {
    let mut builder = arena::Builder { chunks: Vec::new() };
    for _ in 0..times {
        builder.grow_buffer(size); // LINE: grow_buffer
    }
    let total = builder.chunks.iter().map(|chunk| chunk.len()).sum();
    std::mem::forget(builder);
    total
}
