//! `spore bundle create` and `spore bundle inspect`.

use anyhow::Context;
use bytes::Bytes;
use clap::{Subcommand, ValueEnum};
use spore::bundle::codec::{self, DecodeLimits};
use spore::bundle::{Bundle, CrcType, CreationTimestamp, Eid, inspect};
use std::path::PathBuf;
use std::time::Duration;

/// Largest bundle file `create` writes or `inspect` reads (1 GiB).
const MAX_FILE_BYTES: u64 = 1 << 30;

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum CrcArg {
    #[value(name = "none")]
    None,
    #[value(name = "16")]
    Crc16,
    #[value(name = "32")]
    Crc32,
}

#[derive(Subcommand, Debug)]
pub enum BundleCmd {
    /// Write one BPv7 bundle (RFC 9171) to a file.
    Create {
        /// Source node ID, e.g. dtn://a/ or ipn:1.0.
        #[arg(long)]
        src: Eid,
        /// Destination EID, e.g. dtn://c/app or ipn:2.1.
        #[arg(long)]
        dst: Eid,
        /// File whose bytes become the payload.
        #[arg(long)]
        payload: PathBuf,
        /// Lifetime, e.g. 1h, 7days.
        #[arg(long, value_parser = humantime::parse_duration, default_value = "7days")]
        lifetime: Duration,
        /// CRC type for every block.
        #[arg(long, value_enum, default_value = "32")]
        crc: CrcArg,
        /// Output file.
        #[arg(short = 'o', long = "out")]
        out: PathBuf,
    },
    /// Decode any BPv7 bundle file and print every block.
    Inspect {
        /// Bundle file.
        file: PathBuf,
        /// Print one JSON object.
        #[arg(long)]
        json: bool,
    },
}

/// Runs a `bundle` subcommand.
pub fn run(cmd: BundleCmd) -> anyhow::Result<()> {
    match cmd {
        BundleCmd::Create {
            src,
            dst,
            payload,
            lifetime,
            crc,
            out,
        } => {
            let len = std::fs::metadata(&payload)
                .with_context(|| format!("cannot read {}", payload.display()))?
                .len();
            anyhow::ensure!(
                len <= MAX_FILE_BYTES,
                "payload is larger than {MAX_FILE_BYTES} bytes"
            );
            let data = std::fs::read(&payload)
                .with_context(|| format!("cannot read {}", payload.display()))?;
            let crc = match crc {
                CrcArg::None => CrcType::None,
                CrcArg::Crc16 => CrcType::Crc16,
                CrcArg::Crc32 => CrcType::Crc32c,
            };
            let ts = CreationTimestamp {
                time: spore::node::dtn_now(),
                sequence: 0,
            };
            let mut b = Bundle::new(src, dst, ts, lifetime.as_millis() as u64, Bytes::from(data));
            b.primary.crc_type = crc;
            for blk in &mut b.blocks {
                blk.crc_type = crc;
            }
            let bytes = codec::encode(&b);
            std::fs::write(&out, &bytes)
                .with_context(|| format!("cannot write {}", out.display()))?;
            println!("{} ({} bytes) -> {}", b.id(), bytes.len(), out.display());
            Ok(())
        }
        BundleCmd::Inspect { file, json } => {
            let len = std::fs::metadata(&file)
                .with_context(|| format!("cannot read {}", file.display()))?
                .len();
            anyhow::ensure!(
                len <= MAX_FILE_BYTES,
                "file is larger than {MAX_FILE_BYTES} bytes"
            );
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let limits = DecodeLimits {
                max_bundle_bytes: MAX_FILE_BYTES as usize,
                ..DecodeLimits::default()
            };
            let b = codec::decode(&bytes, &limits)
                .with_context(|| format!("{} is not a valid BPv7 bundle", file.display()))?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inspect::to_json(&b))?);
            } else {
                print!("{}", inspect::to_text(&b));
            }
            Ok(())
        }
    }
}
