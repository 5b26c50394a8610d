//! Every metric family, defined once with its help text, registered in the one registry the daemon serves.
//!
//! Label values come only from bounded sets (formats, qualities, error types, priorities, plans, states, reasons,
//! commands). Handles for every label combination are resolved here, once, so recording an event is an array
//! index and an atomic add, never a label-hash lookup.

use doradura_proto::types::{
    AlertType, CommandName, ErrorCategory, ErrorType, Format, PaymentFailureReason, Priority, RestartReason, SendKind,
    Severity, WorkerPhase,
};
use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
};

use crate::plans::Plan;

/// Every family name, in catalog order.
pub const NAMES: [&str; 37] = [
    "doradura_download_duration_seconds",
    "doradura_download_success_total",
    "doradura_download_failure_total",
    "doradura_queue_wait_time_seconds",
    "doradura_ytdlp_execution_duration_seconds",
    "doradura_download_bytes_total",
    "doradura_task_retries_total",
    "doradura_downloads_in_progress",
    "doradura_telegram_send_duration_seconds",
    "doradura_revenue_total_stars",
    "doradura_revenue_by_plan",
    "doradura_new_subscriptions_total",
    "doradura_subscription_cancellations_total",
    "doradura_payment_checkout_started_total",
    "doradura_payment_success_total",
    "doradura_payment_failure_total",
    "doradura_active_subscriptions",
    "doradura_errors_total",
    "doradura_queue_depth",
    "doradura_bot_uptime_seconds",
    "doradura_bot_connected",
    "doradura_workers",
    "doradura_worker_restarts_total",
    "doradura_ytdlp_up",
    "doradura_ytdlp_release_age_days",
    "doradura_spool_free_bytes",
    "doradura_spool_required_bytes",
    "doradura_rate_limit_hits_total",
    "doradura_alerts_firing",
    "doradura_alerts_sent_total",
    "doradura_daily_active_users",
    "doradura_monthly_active_users",
    "doradura_total_users",
    "doradura_new_users_total",
    "doradura_command_usage_total",
    "doradura_format_requests_total",
    "doradura_build_info",
];

/// Download durations: seconds-scale buckets up to the default 10-minute timeout.
const DURATION_BUCKETS: [f64; 12] = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0];
const WAIT_BUCKETS: [f64; 12] = [0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];
const SEND_BUCKETS: [f64; 10] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0];

/// (format, quality) pairs in a fixed order: the index of a download's label handles.
pub fn format_qualities() -> Vec<(Format, &'static str)> {
    Format::ALL
        .iter()
        .flat_map(|f| f.qualities().iter().map(move |q| (*f, *q)))
        .collect()
}

pub(crate) fn plan_index(p: Plan) -> usize {
    Plan::ALL.iter().position(|x| *x == p).unwrap_or(0)
}

/// The registry and a handle for every label combination.
pub struct Metrics {
    registry: Registry,
    download_duration: Vec<Histogram>,
    pub(super) download_success: Vec<IntCounter>,
    /// `[format][error_type]`.
    pub(super) download_failure: Vec<Vec<IntCounter>>,
    queue_wait: Vec<Histogram>,
    ytdlp_duration: Vec<Histogram>,
    pub(super) download_bytes: Vec<IntCounter>,
    pub(super) task_retries: Vec<IntCounter>,
    downloads_in_progress: IntGauge,
    telegram_send: Vec<Histogram>,
    pub(super) revenue_total: IntCounter,
    pub(super) revenue_by_plan: Vec<IntCounter>,
    pub(super) new_subscriptions: Vec<IntCounter>,
    cancellations: Vec<IntCounter>,
    checkout_started: Vec<IntCounter>,
    pub(super) payment_success: Vec<IntCounter>,
    /// `[plan][reason]`.
    payment_failure: Vec<Vec<IntCounter>>,
    active_subscriptions: Vec<IntGauge>,
    errors: Vec<IntCounter>,
    /// The same errors over the last hour, for `/health` and the alerts.
    recent_errors: super::recent::RecentErrors,
    queue_depth: Vec<IntGauge>,
    uptime: IntCounter,
    /// 1 while the bot's long polling of Telegram succeeds (see `bot::poller`).
    bot_connected: IntGauge,
    workers: Vec<IntGauge>,
    worker_restarts: Vec<IntCounter>,
    ytdlp_up: IntGauge,
    /// Whole days since the release of the oldest yt-dlp a connected worker runs (its version is its date); -1
    /// when no connected worker reports a dated version.
    ytdlp_release_age_days: IntGauge,
    /// Free space on `DOWNLOAD_DIR`'s filesystem, and what starting one more task needs (see `supervisor::spool`).
    spool_free_bytes: IntGauge,
    spool_required_bytes: IntGauge,
    rate_limit_hits: Vec<IntCounter>,
    /// `[alert_type][severity]`.
    alerts_firing: Vec<Vec<IntGauge>>,
    alerts_sent: Vec<Vec<IntCounter>>,
    pub(super) dau: IntGauge,
    pub(super) mau: IntGauge,
    pub(super) total_users: IntGauge,
    pub(super) new_users: IntCounter,
    commands: Vec<IntCounter>,
    format_requests: Vec<IntCounter>,
    build_info: IntGauge,
}

fn reg<C: prometheus::core::Collector + Clone + 'static>(registry: &Registry, c: C) -> C {
    registry
        .register(Box::new(c.clone()))
        .expect("each family is registered once");
    c
}

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    reg(
        r,
        IntCounterVec::new(Opts::new(name, help), labels).expect("valid family"),
    )
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    reg(
        r,
        IntGaugeVec::new(Opts::new(name, help), labels).expect("valid family"),
    )
}

fn histogram_vec(r: &Registry, name: &str, help: &str, labels: &[&str], buckets: &[f64]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(buckets.to_vec());
    reg(r, HistogramVec::new(opts, labels).expect("valid family"))
}

fn each<T, V, F: Fn(&V) -> T>(values: &[V], f: F) -> Vec<T> {
    values.iter().map(f).collect()
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
            .expect("process collector");
        let fq = format_qualities();
        let formats: Vec<&str> = Format::ALL.iter().map(|f| f.as_str()).collect();
        let plans: Vec<&str> = Plan::ALL.iter().map(|p| p.as_str()).collect();

        let duration = histogram_vec(
            &r,
            "doradura_download_duration_seconds",
            "Time from request to finished file, for successful downloads.",
            &["format", "quality"],
            &DURATION_BUCKETS,
        );
        let success = counter_vec(
            &r,
            "doradura_download_success_total",
            "Downloads that produced a file.",
            &["format", "quality"],
        );
        let failure = counter_vec(
            &r,
            "doradura_download_failure_total",
            "Downloads that ended without a file, by cause.",
            &["format", "error_type"],
        );
        let wait = histogram_vec(
            &r,
            "doradura_queue_wait_time_seconds",
            "Time a task waited in the queue before a worker took it.",
            &["priority"],
            &WAIT_BUCKETS,
        );
        let ytdlp = histogram_vec(
            &r,
            "doradura_ytdlp_execution_duration_seconds",
            "Run time of yt-dlp for one attempt.",
            &["format"],
            &DURATION_BUCKETS,
        );
        let bytes = counter_vec(
            &r,
            "doradura_download_bytes_total",
            "Bytes of finished files.",
            &["format"],
        );
        let retries = counter_vec(
            &r,
            "doradura_task_retries_total",
            "Attempts that were retries of a task.",
            &["format"],
        );
        let in_progress = reg(
            &r,
            IntGauge::new("doradura_downloads_in_progress", "Tasks a worker is running now.").expect("valid"),
        );
        let send = histogram_vec(
            &r,
            "doradura_telegram_send_duration_seconds",
            "Time to get a message or file accepted by Telegram, retries included.",
            &["kind"],
            &SEND_BUCKETS,
        );
        let revenue_total = reg(
            &r,
            IntCounter::new("doradura_revenue_total_stars", "Telegram Stars received for plans.").expect("valid"),
        );
        let revenue_by_plan = counter_vec(
            &r,
            "doradura_revenue_by_plan",
            "Telegram Stars received, by plan.",
            &["plan"],
        );
        let new_subs = counter_vec(
            &r,
            "doradura_new_subscriptions_total",
            "Plans bought or extended.",
            &["plan"],
        );
        let cancels = counter_vec(
            &r,
            "doradura_subscription_cancellations_total",
            "Plans cancelled or refunded.",
            &["plan"],
        );
        let checkout = counter_vec(
            &r,
            "doradura_payment_checkout_started_total",
            "Invoices sent to users.",
            &["plan"],
        );
        let pay_ok = counter_vec(&r, "doradura_payment_success_total", "Payments recorded.", &["plan"]);
        let pay_fail = counter_vec(
            &r,
            "doradura_payment_failure_total",
            "Payments refused, by reason.",
            &["plan", "reason"],
        );
        let active = gauge_vec(
            &r,
            "doradura_active_subscriptions",
            "Users on a paid plan now.",
            &["plan"],
        );
        let errors = counter_vec(
            &r,
            "doradura_errors_total",
            "Application errors, by category.",
            &["category"],
        );
        let depth = gauge_vec(&r, "doradura_queue_depth", "Tasks waiting in the queue.", &["priority"]);
        let uptime = reg(
            &r,
            IntCounter::new("doradura_bot_uptime_seconds", "Seconds the daemon has been running.").expect("valid"),
        );
        let bot_connected = reg(
            &r,
            IntGauge::new(
                "doradura_bot_connected",
                "1 while the bot reaches Telegram: from its first answer (getMe) while every getUpdates call \
                 succeeds; 0 before that and from a failed getUpdates until one succeeds again. Not exported when \
                 the bot is off (no TELOXIDE_TOKEN).",
            )
            .expect("valid"),
        );
        let workers = gauge_vec(&r, "doradura_workers", "Worker slots by state.", &["state"]);
        let restarts = counter_vec(
            &r,
            "doradura_worker_restarts_total",
            "Worker processes replaced, by cause.",
            &["reason"],
        );
        let ytdlp_up = reg(
            &r,
            IntGauge::new("doradura_ytdlp_up", "1 when every connected worker can run yt-dlp.").expect("valid"),
        );
        let ytdlp_release_age_days = reg(
            &r,
            IntGauge::new(
                "doradura_ytdlp_release_age_days",
                "Days since the release of the oldest yt-dlp a connected worker runs (yt-dlp versions are release \
                 dates); -1 when no connected worker reports one. Sites break old releases: YtdlpOutdated fires past \
                 ALERT_YTDLP_MAX_AGE_DAYS.",
            )
            .expect("valid"),
        );
        let spool_free_bytes = reg(
            &r,
            IntGauge::new(
                "doradura_spool_free_bytes",
                "Bytes free for the service on the filesystem of DOWNLOAD_DIR (0 when it cannot be read).",
            )
            .expect("valid"),
        );
        let spool_required_bytes = reg(
            &r,
            IntGauge::new(
                "doradura_spool_required_bytes",
                "Bytes the spool needs free to start one more task: MAX_FILE_SIZE_MB per running task and the new \
                 one, plus DOWNLOAD_MIN_FREE_MB. Tasks wait in the queue while free is below it.",
            )
            .expect("valid"),
        );
        let rate = counter_vec(
            &r,
            "doradura_rate_limit_hits_total",
            "Requests refused by a plan's limits.",
            &["plan"],
        );
        let firing = gauge_vec(
            &r,
            "doradura_alerts_firing",
            "Alerts firing now.",
            &["alert_type", "severity"],
        );
        let sent = counter_vec(
            &r,
            "doradura_alerts_sent_total",
            "Alert messages sent to admins.",
            &["alert_type", "severity"],
        );
        let dau = reg(
            &r,
            IntGauge::new("doradura_daily_active_users", "Users active today (UTC).").expect("valid"),
        );
        let mau = reg(
            &r,
            IntGauge::new("doradura_monthly_active_users", "Users active in the last 30 days.").expect("valid"),
        );
        let total = reg(
            &r,
            IntGauge::new("doradura_total_users", "Users known to the bot.").expect("valid"),
        );
        let new_users = reg(
            &r,
            IntCounter::new("doradura_new_users_total", "Users seen for the first time.").expect("valid"),
        );
        let commands = counter_vec(
            &r,
            "doradura_command_usage_total",
            "Bot commands received.",
            &["command"],
        );
        let formats_req = counter_vec(
            &r,
            "doradura_format_requests_total",
            "Downloads requested, by format.",
            &["format"],
        );
        let build = gauge_vec(
            &r,
            "doradura_build_info",
            "Always 1; the label names the running version.",
            &["version"],
        );

        let m = Metrics {
            download_duration: each(&fq, |(f, q)| duration.with_label_values(&[f.as_str(), q])),
            download_success: each(&fq, |(f, q)| success.with_label_values(&[f.as_str(), q])),
            download_failure: each(&formats, |f| {
                each(ErrorType::ALL, |e| failure.with_label_values(&[f, e.as_str()]))
            }),
            queue_wait: each(Priority::ALL, |p| wait.with_label_values(&[p.as_str()])),
            ytdlp_duration: each(&formats, |f| ytdlp.with_label_values(&[f])),
            download_bytes: each(&formats, |f| bytes.with_label_values(&[f])),
            task_retries: each(&formats, |f| retries.with_label_values(&[f])),
            downloads_in_progress: in_progress,
            telegram_send: each(SendKind::ALL, |k| send.with_label_values(&[k.as_str()])),
            revenue_total,
            revenue_by_plan: each(&plans, |p| revenue_by_plan.with_label_values(&[p])),
            new_subscriptions: each(&plans, |p| new_subs.with_label_values(&[p])),
            cancellations: each(&plans, |p| cancels.with_label_values(&[p])),
            checkout_started: each(&plans, |p| checkout.with_label_values(&[p])),
            payment_success: each(&plans, |p| pay_ok.with_label_values(&[p])),
            payment_failure: each(&plans, |p| {
                each(PaymentFailureReason::ALL, |r| {
                    pay_fail.with_label_values(&[p, r.as_str()])
                })
            }),
            active_subscriptions: each(&plans, |p| active.with_label_values(&[p])),
            errors: each(ErrorCategory::ALL, |c| errors.with_label_values(&[c.as_str()])),
            recent_errors: Default::default(),
            queue_depth: each(Priority::ALL, |p| depth.with_label_values(&[p.as_str()])),
            uptime,
            bot_connected,
            workers: each(WorkerPhase::ALL, |s| workers.with_label_values(&[s.as_str()])),
            worker_restarts: each(RestartReason::ALL, |s| restarts.with_label_values(&[s.as_str()])),
            ytdlp_up,
            ytdlp_release_age_days,
            spool_free_bytes,
            spool_required_bytes,
            rate_limit_hits: each(&plans, |p| rate.with_label_values(&[p])),
            alerts_firing: each(AlertType::ALL, |a| {
                each(Severity::ALL, |s| firing.with_label_values(&[a.as_str(), s.as_str()]))
            }),
            alerts_sent: each(AlertType::ALL, |a| {
                each(Severity::ALL, |s| sent.with_label_values(&[a.as_str(), s.as_str()]))
            }),
            dau,
            mau,
            total_users: total,
            new_users,
            commands: each(CommandName::ALL, |c| commands.with_label_values(&[c.as_str()])),
            format_requests: each(&formats, |f| formats_req.with_label_values(&[f])),
            build_info: build.with_label_values(&[crate::VERSION]),
            registry: r,
        };
        m.build_info.set(1);
        m.ytdlp_release_age_days.set(-1);
        m
    }

    /// The index of (format, quality) in `format_qualities()`, without allocating: formats before it, then the
    /// quality's place in its format (its first quality for an unknown one).
    pub fn success_index(&self, format: Format, quality: &str) -> usize {
        Self::fq_index(format, quality)
    }

    fn fq_index(format: Format, quality: &str) -> usize {
        let before: usize = Format::ALL[..format.index()].iter().map(|f| f.qualities().len()).sum();
        before + format.qualities().iter().position(|q| *q == quality).unwrap_or(0)
    }

    /// A download that produced a file.
    pub fn download_done(&self, format: Format, quality: &str, total_s: f64, bytes: u64) {
        let i = Self::fq_index(format, quality);
        self.download_success[i].inc();
        self.download_duration[i].observe(total_s);
        self.download_bytes[format.index()].inc_by(bytes);
    }

    pub fn download_failed(&self, format: Format, error: ErrorType) {
        self.download_failure[format.index()][error.index()].inc();
    }

    pub fn ytdlp_ran(&self, format: Format, seconds: f64) {
        self.ytdlp_duration[format.index()].observe(seconds);
    }

    pub fn retried(&self, format: Format) {
        self.task_retries[format.index()].inc();
    }

    pub fn queue_waited(&self, priority: Priority, seconds: f64) {
        self.queue_wait[priority.index()].observe(seconds);
    }

    /// A first lease after `wait_ms` in the queue.
    pub fn queued_wait(&self, priority: Priority, wait_ms: i64) {
        self.queue_waited(priority, wait_ms.max(0) as f64 / 1000.0);
    }

    pub fn set_queue_depth(&self, depth: &[(Priority, u32)]) {
        for (p, n) in depth {
            self.queue_depth[p.index()].set(i64::from(*n));
        }
    }

    pub fn error(&self, category: ErrorCategory) {
        self.errors[category.index()].inc();
        self.recent_errors.record(category.index());
    }

    /// Errors of `category` since the process started.
    pub fn errors_total(&self, category: ErrorCategory) -> u64 {
        self.errors[category.index()].get()
    }

    /// Errors per category since the process started, in `ErrorCategory::ALL` order.
    pub fn errors_by_category(&self) -> Vec<(ErrorCategory, u64)> {
        ErrorCategory::ALL.iter().map(|c| (*c, self.errors_total(*c))).collect()
    }

    /// Errors per category over the last hour, in `ErrorCategory::ALL` order.
    pub fn errors_last_hour(&self) -> Vec<(ErrorCategory, u64)> {
        ErrorCategory::ALL
            .iter()
            .copied()
            .zip(self.recent_errors.last_hour())
            .collect()
    }

    /// One alert message delivered to one admin.
    pub fn alert_sent(&self, kind: AlertType) {
        self.alerts_sent[kind.index()][kind.severity().index()].inc();
    }

    /// How many alerts of a type are firing now (0 clears it).
    pub fn set_alert_firing(&self, kind: AlertType, firing: i64) {
        self.alerts_firing[kind.index()][kind.severity().index()].set(firing);
    }

    pub fn command(&self, name: CommandName) {
        self.commands[name.index()].inc();
    }

    /// A user seen for the first time.
    pub fn new_user(&self) {
        self.new_users.inc();
        self.total_users.inc();
    }

    /// Adds to the daemon's uptime counter.
    pub fn count_uptime(&self, seconds: u64) {
        self.uptime.inc_by(seconds);
    }

    /// The gauge behind `doradura_bot_connected`, for the bot's status to drive.
    pub fn bot_connected_gauge(&self) -> IntGauge {
        self.bot_connected.clone()
    }

    /// The one registry (for tests and benchmarks that add or gather families).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn set_downloads_in_progress(&self, running: usize) {
        self.downloads_in_progress.set(running as i64);
    }

    /// Whether every connected worker can run yt-dlp.
    pub fn set_ytdlp_up(&self, up: bool) {
        self.ytdlp_up.set(i64::from(up));
    }

    /// Days since the release of the oldest yt-dlp a connected worker runs; `None` (-1) when none reports a date.
    pub fn set_ytdlp_release_age(&self, days: Option<u32>) {
        self.ytdlp_release_age_days.set(days.map_or(-1, i64::from));
    }

    /// Free bytes on the spool's filesystem (`None` when it cannot be read, shown as 0) and what one more task
    /// needs.
    pub fn set_spool(&self, free: Option<u64>, required: u64) {
        self.spool_free_bytes
            .set(i64::try_from(free.unwrap_or(0)).unwrap_or(i64::MAX));
        self.spool_required_bytes
            .set(i64::try_from(required).unwrap_or(i64::MAX));
    }

    /// Refusals counted by `rate_limited`, per plan.
    pub fn rate_limit_hits(&self) -> Vec<(Plan, u64)> {
        Plan::ALL
            .iter()
            .map(|p| (*p, self.rate_limit_hits[plan_index(*p)].get()))
            .collect()
    }

    /// Payments refused or failed since the process started, every plan and reason.
    pub fn payment_failures(&self) -> u64 {
        self.payment_failure.iter().flatten().map(|c| c.get()).sum()
    }

    pub fn format_requested(&self, format: Format) {
        self.format_requests[format.index()].inc();
    }

    fn paid(&self, plan: Plan) -> Option<usize> {
        (plan != Plan::Free).then(|| plan_index(plan))
    }

    pub fn checkout_started(&self, plan: Plan) {
        if let Some(i) = self.paid(plan) {
            self.checkout_started[i].inc();
        }
    }

    /// A payment recorded for the first time.
    pub fn paid_plan(&self, plan: Plan, stars: u32) {
        if let Some(i) = self.paid(plan) {
            self.revenue_total.inc_by(u64::from(stars));
            self.revenue_by_plan[i].inc_by(u64::from(stars));
            self.payment_success[i].inc();
            self.new_subscriptions[i].inc();
        }
    }

    /// A refused or failed payment; `plan` is `Free` when the payload named no valid plan.
    pub fn payment_failed(&self, plan: Plan, reason: PaymentFailureReason) {
        self.payment_failure[plan_index(plan)][reason.index()].inc();
    }

    pub fn cancelled_plan(&self, plan: Plan) {
        if let Some(i) = self.paid(plan) {
            self.cancellations[i].inc();
        }
    }

    pub fn set_active(&self, active: &[(Plan, i64)]) {
        for (p, n) in active {
            self.active_subscriptions[plan_index(*p)].set(*n);
        }
    }

    pub fn rate_limited(&self, plan: Plan) {
        self.rate_limit_hits[plan_index(plan)].inc();
    }

    pub fn sent(&self, kind: SendKind, seconds: f64) {
        self.telegram_send[kind.index()].observe(seconds);
    }

    pub fn worker_restarted(&self, reason: RestartReason) {
        self.worker_restarts[reason.index()].inc();
    }

    /// Sets the worker gauges from the slots' states.
    pub fn set_workers(&self, states: impl Iterator<Item = WorkerPhase> + Clone) {
        for (i, phase) in WorkerPhase::ALL.iter().enumerate() {
            self.workers[i].set(states.clone().filter(|s| s == phase).count() as i64);
        }
    }

    /// The bot is off (no token): `doradura_bot_connected` is not exported, so no rule reads that as an outage.
    pub fn bot_disabled(&self) {
        let _ = self.registry.unregister(Box::new(self.bot_connected.clone()));
    }

    /// The text exposition format (0.0.4) of every family.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        prometheus::TextEncoder::new()
            .encode_utf8(&self.registry.gather(), &mut out)
            .expect("encoding into a String cannot fail");
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn families(m: &Metrics) -> Vec<prometheus::proto::MetricFamily> {
        m.registry
            .gather()
            .into_iter()
            .filter(|f| f.name().starts_with("doradura_"))
            .collect()
    }

    #[test]
    fn the_catalog_has_every_contract_family_once_with_its_labels() {
        let m = Metrics::new();
        let fams = families(&m);
        let names: Vec<&str> = fams.iter().map(|f| f.name()).collect();
        let mut want = NAMES.to_vec();
        want.sort();
        let mut got = names.clone();
        got.sort();
        assert_eq!(got, want);
        let contract = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/DESIGN.md")).unwrap();
        for f in &fams {
            assert!(!f.help().is_empty(), "{} has no help", f.name());
            let mut labels: Vec<&str> = f.get_metric()[0].get_label().iter().map(|l| l.name()).collect();
            labels.sort();
            let row = contract
                .lines()
                .find(|l| l.starts_with(&format!("| {} |", f.name())))
                .unwrap_or_else(|| panic!("{} is not in the contract's table", f.name()));
            let cell = row.split('|').nth(3).unwrap().trim();
            let mut want: Vec<&str> = if cell.is_empty() {
                vec![]
            } else {
                cell.split(", ").collect()
            };
            want.sort();
            assert_eq!(labels, want, "{}", f.name());
        }
    }

    #[test]
    fn counters_end_in_total_except_the_three_kept_names() {
        let m = Metrics::new();
        for f in families(&m) {
            if f.get_field_type() == prometheus::proto::MetricType::COUNTER && !f.name().ends_with("_total") {
                assert!(
                    [
                        "doradura_revenue_total_stars",
                        "doradura_revenue_by_plan",
                        "doradura_bot_uptime_seconds"
                    ]
                    .contains(&f.name()),
                    "{}",
                    f.name()
                );
            }
        }
    }

    #[test]
    fn the_ytdlp_release_age_is_minus_one_until_a_worker_reports_a_dated_version() {
        let m = Metrics::new();
        assert!(m.encode().lines().any(|l| l == "doradura_ytdlp_release_age_days -1"));
        m.set_ytdlp_release_age(Some(61));
        assert!(m.encode().lines().any(|l| l == "doradura_ytdlp_release_age_days 61"));
    }

    #[test]
    fn recorded_events_show_as_exact_lines() {
        let m = Metrics::new();
        m.download_done(Format::Mp3, "192k", 1.5, 1000);
        m.download_done(Format::Mp3, "192k", 0.7, 24);
        m.download_failed(Format::Mp4, ErrorType::TooLarge);
        m.retried(Format::Srt);
        m.set_queue_depth(&[(Priority::High, 2), (Priority::Medium, 0), (Priority::Low, 5)]);
        m.set_workers([WorkerPhase::Idle, WorkerPhase::Busy, WorkerPhase::Idle].into_iter());
        m.error(ErrorCategory::Database);
        m.command(CommandName::Start);
        m.rate_limited(Plan::Free);
        let text = m.encode();
        for line in [
            "doradura_download_success_total{format=\"mp3\",quality=\"192k\"} 2",
            "doradura_download_success_total{format=\"mp3\",quality=\"320k\"} 0",
            "doradura_download_bytes_total{format=\"mp3\"} 1024",
            "doradura_download_duration_seconds_bucket{format=\"mp3\",quality=\"192k\",le=\"1\"} 1",
            "doradura_download_duration_seconds_bucket{format=\"mp3\",quality=\"192k\",le=\"2\"} 2",
            "doradura_download_duration_seconds_sum{format=\"mp3\",quality=\"192k\"} 2.2",
            "doradura_download_failure_total{error_type=\"too_large\",format=\"mp4\"} 1",
            "doradura_task_retries_total{format=\"srt\"} 1",
            "doradura_queue_depth{priority=\"high\"} 2",
            "doradura_queue_depth{priority=\"low\"} 5",
            "doradura_workers{state=\"idle\"} 2",
            "doradura_workers{state=\"busy\"} 1",
            "doradura_workers{state=\"crash_loop\"} 0",
            "doradura_errors_total{category=\"database\"} 1",
            "doradura_command_usage_total{command=\"start\"} 1",
            "doradura_rate_limit_hits_total{plan=\"free\"} 1",
            &format!("doradura_build_info{{version=\"{}\"}} 1", crate::VERSION),
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
    }
}
