//! Figure 8, the dashboard's cost: noop throughput with the HTTP endpoint on, a live page's
//! event stream read without pause and `/metrics` scraped every second, as a ratio to the
//! same run with `--http off` (goal: at least 0.95).

use crate::procs::Master;
use crate::{noop, run_job, wait_workers};
use anyhow::{Context, Result};
use farm_client::Client;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Reads `GET path` from `addr` until `stop`, counting the bytes; `every` repeats the request
/// (a scrape) instead of reading one endless reply (the event stream).
fn reader(
    addr: String,
    path: &'static str,
    every: Option<Duration>,
    stop: Arc<AtomicBool>,
) -> Arc<AtomicU64> {
    let bytes = Arc::new(AtomicU64::new(0));
    let counted = bytes.clone();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok(mut s) = TcpStream::connect(&addr) else { return };
            let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
            let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
            if s.write_all(req.as_bytes()).is_err() {
                return;
            }
            let mut buf = [0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                match s.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        counted.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                    Err(_) => break,
                }
            }
            match every {
                Some(pause) => std::thread::sleep(pause),
                None => return,
            }
        }
    });
    bytes
}

/// Best of 3 runs of 1,000,000 noop shards on 2 local workers x 1 thread, in shards/s.
async fn best_rate(master: &Master) -> Result<f64> {
    let mut client = Client::connect(&master.url).await?;
    wait_workers(&mut client, 2).await?;
    let mut best: f64 = 0.0;
    for _ in 0..3 {
        let ms = run_job(&mut client, noop(1_000_000)).await?;
        best = best.max(1e6 / (ms as f64 / 1000.0));
    }
    Ok(best)
}

/// Figure 8.
pub async fn dashboard(farm: &Path) -> Result<()> {
    let workers = ["--workers", "2", "--threads", "1"];
    let off = Master::start(farm, &[&workers[..], &["--http", "off"]].concat())?;
    let rate_off = best_rate(&off).await?;
    drop(off);
    let args = [&workers[..], &["--http", "127.0.0.1:0", "--metrics-open"]].concat();
    let (on, lines) = Master::start_lines(farm, &args, 2)?;
    let http = lines.first().context("no dashboard line")?;
    let addr = http.trim_start_matches("http://").trim_end_matches('/').to_string();
    let stop = Arc::new(AtomicBool::new(false));
    let events = reader(addr.clone(), "/api/events", None, stop.clone());
    let scrapes = reader(addr, "/metrics", Some(Duration::from_secs(1)), stop.clone());
    let rate_on = best_rate(&on).await?;
    stop.store(true, Ordering::Relaxed);
    let (events, scrapes) = (events.load(Ordering::Relaxed), scrapes.load(Ordering::Relaxed));
    println!(
        "8. dashboard cost: noop 0..1000000 --shard-size 1, 2 workers x 1 thread, best of 3: --http off {rate_off:.0} shards/s; on, with a live page's event stream read ({} KiB) and /metrics scraped every second ({} KiB): {rate_on:.0} shards/s; ratio {:.3}",
        events / 1024,
        scrapes / 1024,
        rate_on / rate_off
    );
    Ok(())
}
