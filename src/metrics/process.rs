//! The operator's own process, read from `/proc/self` at each scrape under the names Prometheus' client libraries
//! use (`process_cpu_seconds_total`, `process_resident_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), so the usual dashboards and alerts on them work.
//!
//! prometheus-client ships no process collector, and the maintained one written for it depends on an older
//! prometheus-client whose registry types differ from ours; the handful of values is read here instead. On a
//! system without `/proc` (not Linux) nothing is exported.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/<pid>/stat`'s times: `USER_HZ`, 100 on every Linux architecture.
const USER_HZ: f64 = 100.0;

/// What `/proc/self` says about the process.
#[derive(Debug, Default, PartialEq)]
pub struct Sample {
    /// User and system CPU time, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size, in bytes.
    pub resident_bytes: u64,
    /// Virtual memory size, in bytes.
    pub virtual_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// The soft limit on open file descriptors (`None`: unlimited).
    pub max_fds: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: f64,
    /// Threads.
    pub threads: u64,
}

impl Sample {
    /// Reads `/proc/self`; `None` where it is not readable.
    pub fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
        Self::parse(&stat, &status, &boot, &limits, open_fds)
    }

    /// The sample the texts of `/proc/self/stat`, `/proc/self/status`, `/proc/stat` and `/proc/self/limits`
    /// describe, with `open_fds` entries in `/proc/self/fd`.
    pub fn parse(stat: &str, status: &str, boot: &str, limits: &str, open_fds: u64) -> Option<Self> {
        // The command name (field 2) is in parentheses and may hold spaces: the fields after its last ')' are
        // numbered from 3 (state).
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        let (utime, stime, threads, start_ticks, vsize) =
            (field(14)?, field(15)?, field(20)?, field(22)?, field(23)?);
        let kb = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line[key.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok()
        };
        let btime = boot.lines().find_map(|l| l.strip_prefix("btime "))?.trim().parse::<u64>().ok()?;
        let max_fds = limits.lines().find(|l| l.starts_with("Max open files")).and_then(|l| {
            l["Max open files".len()..].split_whitespace().next().and_then(|soft| soft.parse::<u64>().ok())
        });
        Some(Sample {
            cpu_seconds: (utime + stime) as f64 / USER_HZ,
            resident_bytes: kb("VmRSS:")? * 1024,
            virtual_bytes: vsize,
            open_fds,
            max_fds,
            start_time_seconds: btime as f64 + start_ticks as f64 / USER_HZ,
            threads,
        })
    }
}

/// Exports a fresh [`Sample`] at each scrape.
#[derive(Debug)]
pub struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(s) = Sample::read() else { return Ok(()) };
        let cpu = ConstCounter::new(s.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            ("process_resident_memory_bytes", "Resident memory size in bytes", Some(s.resident_bytes as f64)),
            ("process_virtual_memory_bytes", "Virtual memory size in bytes", Some(s.virtual_bytes as f64)),
            ("process_open_fds", "Number of open file descriptors", Some(s.open_fds as f64)),
            ("process_max_fds", "Maximum number of open file descriptors", s.max_fds.map(|n| n as f64)),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                Some(s.start_time_seconds),
            ),
            ("process_threads", "Number of OS threads in the process", Some(s.threads as f64)),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "4242 (tokio (rt) x) S 1 4242 4242 0 -1 4194560 2000 0 0 0 250 75 0 0 20 0 7 0 \
                        123400 734003200 5000 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
    const STATUS: &str = "Name:\tzim-operator\nVmPeak:\t  716800 kB\nVmRSS:\t   20480 kB\nThreads:\t7\n";
    const BOOT: &str = "cpu  1 2 3\nbtime 1700000000\nprocesses 10\n";
    const LIMITS: &str = "Limit                     Soft Limit           Hard Limit           Units\n\
                          Max open files            1048576              1048576              files\n";

    #[test]
    fn parses_proc_self() {
        let s = Sample::parse(STAT, STATUS, BOOT, LIMITS, 12).unwrap();
        assert_eq!(
            s,
            Sample {
                cpu_seconds: 3.25,
                resident_bytes: 20480 * 1024,
                virtual_bytes: 734003200,
                open_fds: 12,
                max_fds: Some(1048576),
                start_time_seconds: 1700001234.0,
                threads: 7,
            }
        );
        let unlimited = LIMITS.replace("1048576              1048576", "unlimited            unlimited");
        assert_eq!(Sample::parse(STAT, STATUS, BOOT, &unlimited, 12).unwrap().max_fds, None);
        assert_eq!(Sample::parse("garbage", STATUS, BOOT, LIMITS, 1), None);
    }

    /// The live process: plausible values, and the families on the registry's text.
    #[test]
    fn reads_this_process() {
        let s = Sample::read().expect("/proc/self is readable on Linux");
        assert!(s.resident_bytes > 1 << 20 && s.open_fds >= 3 && s.threads >= 1, "{s:?}");
        let now = jiff::Timestamp::now().as_second() as f64;
        assert!(s.start_time_seconds > now - 86400.0 && s.start_time_seconds <= now + 1.0, "{s:?}");
        let text = super::super::Metrics::new().encode();
        for family in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"] {
            assert!(text.lines().any(|l| l.starts_with(&format!("{family} "))), "{family} in\n{text}");
        }
    }
}
