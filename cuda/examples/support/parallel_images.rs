//! Device images (version 1 and pair images) built with the tiles spread over the machine's
//! threads, for the example programs that make large test inputs (`gpu_suite`, `fused_prep`).
//! The library builds on one thread (`tileans::image::build`, `build_pairs`); its per-tile pieces
//! make this a few lines.

use tileans::image;
use tileans::{Error, Frame};

/// The machine's threads (2 when unknown).
pub fn threads() -> u64 {
    std::thread::available_parallelism().map(|x| x.get()).unwrap_or(2) as u64
}

/// `f(range)` over the tiles `0..n`, in one range per thread of the machine, in range order.
pub fn par_ranges<T: Send>(
    n: u64,
    f: impl Fn(std::ops::Range<u64>) -> Result<T, Error> + Sync,
) -> Result<Vec<T>, Error> {
    let th = threads();
    std::thread::scope(|sc| {
        let hs: Vec<_> = (0..th)
            .map(|i| {
                let f = &f;
                sc.spawn(move || f(n * i / th..n * (i + 1) / th))
            })
            .collect();
        hs.into_iter().map(|h| h.join().expect("image thread")).collect()
    })
}

/// `image::build`, the tiles over the machine's threads.
pub fn image_parallel(f: &Frame) -> Result<Vec<u8>, Error> {
    let parts = par_ranges(f.num_tiles(), |r| r.map(|t| image::build_tile(f, t)).collect::<Result<Vec<_>, _>>())?;
    image::assemble(f, &parts.concat())
}

/// `image::build_pairs`: the pair counts, then the tiles, over the machine's threads.
pub fn pairs_parallel(f: &Frame) -> Result<Vec<u8>, Error> {
    let counts = par_ranges(f.num_tiles(), |r| {
        let mut c = image::PairCounts::new();
        r.into_iter().try_for_each(|t| c.add_tile(f, t))?;
        Ok(c)
    })?;
    let mut all = image::PairCounts::new();
    counts.iter().for_each(|c| all.merge(c));
    let tables = image::PairTables::new(f, &all)?;
    let parts = par_ranges(f.num_tiles(), |r| {
        r.map(|t| image::build_tile_pairs(f, t, &tables)).collect::<Result<Vec<_>, _>>()
    })?;
    image::assemble_pairs(f, &tables, &parts.concat())
}
