//! C ABI for tileans (in progress).
