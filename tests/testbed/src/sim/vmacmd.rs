//! `vma list|config|verify`: Proxmox's VMA tool, read-only subset, on uncompressed streams (a file or
//! `-` for stdin, as `zstd -dc x.vma.zst | vma verify -v -`). Failures end like the real tool's
//! `g_error` abort: a `** (process:PID): ERROR **:` line and exit 133.

use std::fs::File;
use std::io::{BufReader, Read};

use super::{CmdResult, Ctx, Fail, conf, vma};

fn open(path: &str) -> Result<Box<dyn Read>, Fail> {
    if path == "-" {
        return Ok(Box::new(BufReader::new(std::io::stdin())));
    }
    let f =
        File::open(path).map_err(|e| Fail::new(format!("unable to open file '{path}' - {e}")))?;
    Ok(Box::new(BufReader::with_capacity(1 << 20, f)))
}

fn abort(what: &str, e: &vma::VmaError) -> Fail {
    Fail {
        message: format!(
            "** (process:{}): ERROR **: {what} failed - {e}",
            std::process::id()
        ),
        exit: 133,
    }
}

fn print_header(ctx: &mut Ctx, h: &vma::VmaHeader) {
    for (name, data) in &h.configs {
        ctx.say(format!("CFG: size: {} name: {name}", data.len()));
    }
    for d in &h.devices {
        ctx.say(format!(
            "DEV: dev_id={} size: {} devname: {}",
            d.id, d.size, d.name
        ));
    }
    ctx.say(format!("CTIME: {}", conf::ctime_string(h.ctime)));
}

/// `vma ...`.
pub(crate) fn main(ctx: &mut Ctx, argv: &[String]) -> CmdResult {
    // Reads no state: do not hold the state lock while reading a big stream.
    ctx.unlock();
    let usage = "USAGE: vma list <filename>\n       vma config <filename> [-c config]\n       vma verify <filename> [-v]";
    let (Some(sub), Some(path)) = (
        argv.first(),
        argv.iter()
            .skip(1)
            .find(|a| !a.starts_with('-') || *a == "-"),
    ) else {
        return Err(Fail::new(usage));
    };
    match sub.as_str() {
        "list" => {
            let h = vma::read_header(&mut open(path)?).map_err(|e| abort("list", &e))?;
            print_header(ctx, &h);
        }
        "config" => {
            let h = vma::read_header(&mut open(path)?).map_err(|e| abort("config", &e))?;
            let wanted = argv.windows(2).find(|w| w[0] == "-c").map(|w| w[1].clone());
            let name = wanted.unwrap_or_else(|| "qemu-server.conf".into());
            let text = h
                .config(&name)
                .ok_or_else(|| Fail::new(format!("unable to find configuration data '{name}'")))?;
            ctx.out.extend_from_slice(text.as_bytes());
        }
        "verify" => {
            let info = vma::verify(open(path)?).map_err(|e| abort("verify", &e))?;
            if argv.iter().any(|a| a == "-v") {
                print_header(ctx, &info.header);
                let total: u64 = info.header.devices.iter().map(|d| d.size).sum();
                ctx.say(format!(
                    "progress 100% (read {total} bytes, duration 0 sec)"
                ));
                let stored = info.data_blocks * vma::BLOCK_SIZE as u64;
                let sparse = total.saturating_sub(stored);
                let pct = if total > 0 {
                    sparse as f64 * 100.0 / total as f64
                } else {
                    0.0
                };
                ctx.say(format!(
                    "total bytes read {total}, sparse bytes {sparse} ({pct:.3}%)"
                ));
            }
        }
        _ => return Err(Fail::new(format!("unknown command '{sub}'\n{usage}"))),
    }
    Ok(0)
}
