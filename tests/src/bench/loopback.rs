//! The loopback transfer of the bench (one seeder process, one leecher process, the 1 GiB
//! payload), and its variants: encryption required on both sides (`rc4`), uTP only (`utp`).

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use super::{GIB, MIB, Payload, Proc, Rt, Usage, err, mb_per_s, median, p_size};

/// A loopback transfer with both children given the same flags.
pub(super) struct Variant {
    /// The part's name for `--only`.
    pub part: &'static str,
    /// The table rows' prefix.
    label: &'static str,
    /// Where the figures go in the JSON.
    pub json_key: &'static str,
    /// What both children are given.
    flags: &'static [&'static str],
    /// The goal of its transfer rate, for the table.
    target: &'static str,
}

/// The variants, in the order they run.
pub(super) const VARIANTS: [Variant; 2] = [
    Variant {
        part: "rc4",
        label: "loopback rc4",
        json_key: "loopback_rc4",
        flags: &["--encryption-required"],
        // Twice libtorrent's 171 MB/s measured here.
        target: "≥ 342",
    },
    Variant {
        part: "utp",
        label: "loopback utp",
        json_key: "loopback_utp",
        flags: &["--transport", "utp"],
        // Issue 17: libtorrent to libtorrent over uTP moved 5.2 MB/s here.
        target: "≥ 200, ≥ 1/3 of tcp",
    },
];

/// What a variant measured: the table's rows and the JSON.
pub(super) struct Measured {
    pub rows: Vec<(String, String, &'static str)>,
    pub json: Value,
}

/// Runs `variant` `runs` times on each runtime; its rate is given next to the plain
/// loopback figure of `out` (same runtime) when that part ran.
pub(super) fn variant(
    exe: &Path,
    runtimes: &[Rt],
    runs: usize,
    p: &Payload,
    work: &Path,
    variant: &Variant,
    out: &Value,
) -> Result<Measured, String> {
    let flags: Vec<String> = variant.flags.iter().map(|f| f.to_string()).collect();
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for &rt in runtimes {
        let mut measured = Vec::new();
        for _ in 0..runs {
            measured.push(once(exe, rt, p, work, &flags)?);
        }
        let size = p_size(p)?;
        let gib = size as f64 / GIB as f64;
        let rate = median(measured.iter().map(|r| mb_per_s(size, r.secs)).collect());
        let lcpu = median(measured.iter().map(|r| r.leecher.cpu() / gib).collect());
        let scpu = median(measured.iter().map(|r| r.seeder.cpu() / gib).collect());
        let n = rt.name();
        let tcp = out["loopback"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["runtime"] == n))
            .and_then(|l| l["mb_s_median"].as_f64());
        let shown = match tcp {
            Some(tcp) => format!("{rate:.0} ({:.0}% of {tcp:.0})", 100.0 * rate / tcp),
            None => format!("{rate:.0}"),
        };
        let label = variant.label;
        rows.push((
            format!("{label} {n}: leech (MB/s, median)"),
            shown,
            variant.target,
        ));
        rows.push((
            format!("{label} {n}: leecher CPU (s/GiB)"),
            format!("{lcpu:.2}"),
            "",
        ));
        rows.push((
            format!("{label} {n}: seeder CPU (s/GiB)"),
            format!("{scpu:.2}"),
            "",
        ));
        let lrss = measured
            .iter()
            .map(|r| r.leecher.max_rss)
            .max()
            .unwrap_or(0);
        rows.push((
            format!("{label} {n}: leecher peak RSS (MiB)"),
            format!("{:.1}", lrss as f64 / MIB as f64),
            "",
        ));
        all.push(json!({
            "runtime": n, "bytes": size, "mb_s_median": rate,
            "leecher_cpu_s_per_gib": lcpu, "seeder_cpu_s_per_gib": scpu,
            "leecher_max_rss": lrss, "tcp_mb_s_median": tcp,
            "runs": measured.iter().map(|r| json!({
                "secs": r.secs, "leecher": r.leecher.to_json(), "seeder": r.seeder.to_json(),
            })).collect::<Vec<_>>(),
        }));
    }
    Ok(Measured {
        rows,
        json: Value::Array(all),
    })
}

/// Figures of one loopback run.
pub(super) struct Transfer {
    pub(super) secs: f64,
    pub(super) seeder: Usage,
    pub(super) leecher: Usage,
}

fn same_content(a: &Path, b: &Path) -> Result<bool, String> {
    let (mut fa, mut fb) = (File::open(a).map_err(err)?, File::open(b).map_err(err)?);
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = fa.read(&mut ba).map_err(err)?;
        if n == 0 {
            return Ok(fb.read(&mut bb).map_err(err)? == 0);
        }
        let got = bb.get_mut(..n).ok_or("buffer")?;
        fb.read_exact(got).map_err(err)?;
        if ba.get(..n) != Some(&got[..]) {
            return Ok(false);
        }
    }
}

pub(super) fn once(
    exe: &Path,
    rt: Rt,
    p: &Payload,
    work: &Path,
    extra: &[String],
) -> Result<Transfer, String> {
    let leech_dir = work.join(format!("leech-{}", rt.name()));
    let _ = fs::remove_dir_all(&leech_dir);
    let seed_dir = p.file.parent().ok_or("payload has no directory")?;
    let seeder = Proc::spawn(exe, rt, "seed", &p.torrent, seed_dir, extra)?;
    let mut leecher = Proc::spawn(exe, rt, "leech", &p.torrent, &leech_dir, extra)?;
    leecher.add_peer(seeder.port)?;
    let secs = leecher.expect_secs("done")?;
    let leecher_usage = leecher.stop()?;
    let seeder_usage = seeder.stop()?;
    let name = p.file.file_name().ok_or("payload has no name")?;
    if !same_content(&p.file, &leech_dir.join(name))? {
        return Err("the leecher's copy differs from the seeder's".into());
    }
    fs::remove_dir_all(&leech_dir).map_err(err)?;
    Ok(Transfer {
        secs,
        seeder: seeder_usage,
        leecher: leecher_usage,
    })
}
