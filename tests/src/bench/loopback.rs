//! The loopback transfer of the bench (one seeder process, one leecher process, the 1 GiB
//! payload), and its variants: encryption required on both sides (`rc4`), uTP only (`utp`).

use std::fs::{self, File};
use std::io::Read;
use std::path::Path;

use serde_json::{Value, json};

use super::{GIB, MIB, Payload, Proc, Rt, Usage, err, libtorrent, mb_per_s, median, p_size};

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
    /// libtorrent's flags for the same transfer (`lt_client.py`'s), when libtorrent to
    /// libtorrent runs beside ours as the reference of the part's goal.
    libtorrent: Option<&'static [&'static str]>,
}

/// The variants, in the order they run.
pub(super) const VARIANTS: [Variant; 2] = [
    Variant {
        part: "rc4",
        label: "loopback rc4",
        json_key: "loopback_rc4",
        flags: &["--encryption-required"],
        // Issue 20: twice libtorrent's rate, RC4 on both sides, in the same run.
        target: "≥ 2 × libtorrent",
        libtorrent: Some(&["--encryption", "required"]),
    },
    Variant {
        part: "utp",
        label: "loopback utp",
        json_key: "loopback_utp",
        flags: &["--transport", "utp"],
        // Issue 17: libtorrent to libtorrent over uTP moved 5.2 MB/s here.
        target: "≥ 200, ≥ 1/3 of tcp",
        libtorrent: None,
    },
];

/// What a variant measured: the table's rows and the JSON.
pub(super) struct Measured {
    pub rows: Vec<(String, String, &'static str)>,
    pub json: Value,
}

/// Runs `variant` `runs` times on each runtime, the runtimes (and libtorrent, when the
/// variant has a libtorrent reference and it is installed) taking turns so that a machine
/// whose speed drifts moves all alike. Its rate is given next to libtorrent's, or else next
/// to the plain loopback figure of `out` (same runtime) when that part ran.
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
    let lt_flags = variant.libtorrent.filter(|_| libtorrent::available());
    let mut measured: Vec<Vec<Transfer>> = runtimes.iter().map(|_| Vec::new()).collect();
    let mut lt_runs = Vec::new();
    for _ in 0..runs {
        if let Some(f) = lt_flags {
            lt_runs.push(libtorrent::once(p, work, f)?);
        }
        for (&rt, m) in runtimes.iter().zip(&mut measured) {
            m.push(once(exe, rt, p, work, &flags)?);
        }
    }
    let size = p_size(p)?;
    let mut rows = Vec::new();
    let mut all = Vec::new();
    let label = variant.label;
    let lt_rate = if lt_runs.is_empty() {
        if variant.libtorrent.is_some() {
            rows.push((
                format!("{label} libtorrent: leech (MB/s, median)"),
                "not installed".to_string(),
                "",
            ));
        }
        None
    } else {
        let figures = figures(size, &lt_runs);
        let shown = format!("{:.0}", figures.rate);
        rows.extend(figures.rows(label, "libtorrent", shown, [""; 4]));
        all.push(figures.json("libtorrent", size, &lt_runs, json!({})));
        Some(figures.rate)
    };
    for (&rt, m) in runtimes.iter().zip(&measured) {
        let f = figures(size, m);
        let n = rt.name();
        let tcp = out["loopback"]
            .as_array()
            .and_then(|a| a.iter().find(|l| l["runtime"] == n))
            .and_then(|l| l["mb_s_median"].as_f64());
        let rate = f.rate;
        let shown = match (lt_rate, tcp) {
            (Some(lt), _) => format!("{rate:.0} ({:.2} × {lt:.0})", rate / lt),
            (None, Some(tcp)) => format!("{rate:.0} ({:.0}% of {tcp:.0})", 100.0 * rate / tcp),
            (None, None) => format!("{rate:.0}"),
        };
        rows.extend(f.rows(label, n, shown, [variant.target, "", "", ""]));
        let compared = json!({
            "tcp_mb_s_median": tcp, "libtorrent_mb_s_median": lt_rate,
            "times_libtorrent": lt_rate.map(|lt| rate / lt),
        });
        all.push(f.json(n, size, m, compared));
    }
    Ok(Measured {
        rows,
        json: Value::Array(all),
    })
}

/// The plain transfer, `runs` times on each runtime (the `loopback` part).
pub(super) fn plain(
    exe: &Path,
    runtimes: &[Rt],
    runs: usize,
    p: &Payload,
    work: &Path,
) -> Result<Measured, String> {
    let size = p_size(p)?;
    let mut rows = Vec::new();
    let mut all = Vec::new();
    for &rt in runtimes {
        let measured = (0..runs)
            .map(|_| once(exe, rt, p, work, &[]))
            .collect::<Result<Vec<_>, _>>()?;
        let f = figures(size, &measured);
        let seeder_rss = measured.iter().map(|r| r.seeder.max_rss).max().unwrap_or(0);
        let n = rt.name();
        let shown = format!("{:.0}", f.rate);
        rows.extend(f.rows("loopback", n, shown, ["≥ 1000", "≤ 1.1", "", "≤ 32"]));
        rows.push((
            format!("loopback {n}: seeder peak RSS (MiB)"),
            format!("{:.1}", seeder_rss as f64 / MIB as f64),
            "",
        ));
        all.push(f.json(n, size, &measured, json!({ "seeder_max_rss": seeder_rss })));
    }
    Ok(Measured {
        rows,
        json: Value::Array(all),
    })
}

/// The medians of a set of runs.
struct Figures {
    /// MB/s.
    rate: f64,
    leecher_cpu: f64,
    seeder_cpu: f64,
    leecher_rss: u64,
}

fn figures(size: u64, runs: &[Transfer]) -> Figures {
    let gib = size as f64 / GIB as f64;
    Figures {
        rate: median(runs.iter().map(|r| mb_per_s(size, r.secs)).collect()),
        leecher_cpu: median(runs.iter().map(|r| r.leecher.cpu() / gib).collect()),
        seeder_cpu: median(runs.iter().map(|r| r.seeder.cpu() / gib).collect()),
        leecher_rss: runs.iter().map(|r| r.leecher.max_rss).max().unwrap_or(0),
    }
}

impl Figures {
    /// The table's rows for `who` (a runtime, or libtorrent), the rate `shown` as given.
    fn rows(
        &self,
        label: &str,
        who: &str,
        shown: String,
        targets: [&'static str; 4],
    ) -> Vec<(String, String, &'static str)> {
        let [rate, leecher_cpu, seeder_cpu, leecher_rss] = targets;
        vec![
            (format!("{label} {who}: leech (MB/s, median)"), shown, rate),
            (
                format!("{label} {who}: leecher CPU (s/GiB)"),
                format!("{:.2}", self.leecher_cpu),
                leecher_cpu,
            ),
            (
                format!("{label} {who}: seeder CPU (s/GiB)"),
                format!("{:.2}", self.seeder_cpu),
                seeder_cpu,
            ),
            (
                format!("{label} {who}: leecher peak RSS (MiB)"),
                format!("{:.1}", self.leecher_rss as f64 / MIB as f64),
                leecher_rss,
            ),
        ]
    }

    /// The JSON of `who`'s runs, with the fields of `compared` added.
    fn json(&self, who: &str, size: u64, runs: &[Transfer], compared: Value) -> Value {
        let mut v = json!({
            "runtime": who, "bytes": size, "mb_s_median": self.rate,
            "leecher_cpu_s_per_gib": self.leecher_cpu, "seeder_cpu_s_per_gib": self.seeder_cpu,
            "leecher_max_rss": self.leecher_rss,
            "runs": runs.iter().map(|r| json!({
                "secs": r.secs, "leecher": r.leecher.to_json(), "seeder": r.seeder.to_json(),
            })).collect::<Vec<_>>(),
        });
        if let (Some(o), Value::Object(c)) = (v.as_object_mut(), compared) {
            o.extend(c);
        }
        v
    }
}

/// Figures of one loopback run.
pub(super) struct Transfer {
    pub(super) secs: f64,
    pub(super) seeder: Usage,
    pub(super) leecher: Usage,
}

pub(super) fn same_content(a: &Path, b: &Path) -> Result<bool, String> {
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
