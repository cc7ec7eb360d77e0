//! `tileans`: lossless tiled-rANS compression of safetensors checkpoints.
//!
//! Exit status: 0 success; 1 `verify` found a bad tensor; 2 bad input, bad usage or any other
//! error; 130 interrupted.
#![deny(unsafe_code)]

mod bench;
mod codec;
mod compress;
mod container;
mod decompress;
mod demo;
mod io;
mod st;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

/// Lossless tiled-rANS compression of neural-network weights in safetensors files.
#[derive(Parser, Debug)]
#[command(name = "tileans", version, about, long_about = None)]
#[command(after_help = "With no command, runs the demo.\n\
Exit status: 0 ok; 1 verify found a bad tensor; 2 bad input or usage; 130 interrupted.")]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Compress every BF16/F16/F32/F8/I8/U8 tensor of a safetensors file (others are kept as
    /// they are); the output is a safetensors file too.
    Compress(compress::CompressArgs),
    /// Restore the original file, byte for byte.
    Decompress {
        /// A file written by `tileans compress`.
        input: PathBuf,
        /// Where to write the original safetensors file.
        output: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Check every checksum and decode every tensor: exit 0 if all is well, 1 naming the first
    /// bad tensor.
    Verify {
        /// A file written by `tileans compress`.
        file: PathBuf,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Per tensor and in total: sizes, bits per weight, the order-0 bound, the overhead.
    Stats {
        /// A compressed or uncompressed safetensors file.
        file: PathBuf,
        /// Print one JSON object (fields documented in cli/README-cli.md).
        #[arg(long)]
        json: bool,
        /// Worker threads (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
    },
    /// Decode throughput of a whole file, in memory, with 1 thread and with N (default: all).
    Bench {
        /// A compressed file, or an uncompressed one (then compressed in memory first).
        file: PathBuf,
        /// Threads of the multi-threaded run (default: all cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Timed decodes per thread count (the best is reported), after one warm-up.
        #[arg(long, default_value_t = 5)]
        runs: usize,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Compress, verify and measure the committed sample of real weights, in memory.
    Demo {
        /// Use this safetensors file instead of the committed sample.
        #[arg(long)]
        file: Option<PathBuf>,
    },
}

/// What a command prints on stdout, written at the end (a closed pipe is not an error).
#[derive(Default)]
pub struct Report {
    text: String,
}

impl Report {
    /// Add a line.
    pub fn line(&mut self, s: impl AsRef<str>) {
        self.text.push_str(s.as_ref());
        self.text.push('\n');
    }

    fn flush(&self) {
        let mut out = std::io::stdout().lock();
        // A reader that went away (`| head`) is not an error worth a message.
        let _ = out.write_all(self.text.as_bytes()).and_then(|()| out.flush());
    }
}

/// A progress bar over `total` bytes on stderr; hidden when stderr is not a terminal.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// `s` cut to at most `width` characters, keeping its end.
pub fn ellipsize(s: &str, width: usize) -> String {
    let n = s.chars().count();
    if n <= width {
        return s.to_owned();
    }
    let tail: String = s.chars().skip(n + 1 - width).collect();
    format!("…{tail}")
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    if let Some(n) = threads {
        anyhow::ensure!(n > 0, "--threads must be at least 1");
        rayon::ThreadPoolBuilder::new().num_threads(n).build_global().context("starting threads")?;
    }
    Ok(())
}

fn run(cli: Cli, report: &mut Report) -> Result<ExitCode> {
    codec::install_interrupt_handler();
    match cli.command.unwrap_or(Command::Demo { file: None }) {
        Command::Compress(args) => {
            set_threads(args.threads)?;
            compress::run(&args, report)?;
        }
        Command::Decompress { input, output, threads } => {
            set_threads(threads)?;
            decompress::run(&input, &output, report)?;
        }
        Command::Verify { file, threads } => {
            set_threads(threads)?;
            return decompress::verify(&file, report);
        }
        Command::Stats { file, json, threads } => {
            set_threads(threads)?;
            stats::run(&file, json, report)?;
        }
        Command::Bench { file, threads, runs, json } => {
            anyhow::ensure!(threads != Some(0), "--threads must be at least 1");
            bench::run(&file, threads, runs, json, report)?;
        }
        Command::Demo { file } => demo::run(file.as_deref(), report)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut report = Report::default();
    let code = match run(cli, &mut report) {
        Ok(code) => code,
        Err(e) if e.chain().any(|c| c.is::<codec::Interrupted>()) => {
            eprintln!("tileans: interrupted; no output written");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("tileans: error: {e:#}");
            ExitCode::from(2)
        }
    };
    report.flush();
    code
}
