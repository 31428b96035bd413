//! The inference worker: one std thread owns the engine and runs one job at a
//! time; async request handlers hand it jobs and await a oneshot answer.
//!
//! Scheduling rules:
//! - at most one job per document waits in the queue; a newer one replaces
//!   it and the older is answered [`Skip::Superseded`] at once;
//! - a newer job, or an edit of the document, cancels the document's running
//!   job through its [`CancelToken`], which the engine checks after every token;
//! - a job whose token fired before it started is answered without running;
//! - reviews ([`ReviewJob`]) wait in a queue of their own, one per document,
//!   and run only when no completion waits: a completion submitted while a
//!   review runs stops it at its next site (through the review's
//!   [`CancelToken`]) and the review starts over after it; a newer review of
//!   the document, an edit or a close stops it for good;
//! - loading a model drains both queues (answered [`Skip::NotReady`]);
//! - a panic in a request is caught and answered as a failure; the model
//!   stays loaded with its caches cleared ([`Engine::reset`]).

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{mpsc, oneshot};
use tower_lsp_server::ls_types::Uri;

use crate::completion::{CompletionOptions, Outcome, complete_with};
use crate::engine::{CancelToken, Engine, SessionOptions};
use crate::files::Stamp;
use crate::prompt::CompletionContext;
use crate::review::{Review, ReviewError, ReviewOptions, review};

/// A completion to run.
pub struct Job {
    pub uri: Uri,
    /// Orders requests for one document: higher is newer.
    pub seq: u64,
    pub ctx: CompletionContext,
    pub options: CompletionOptions,
    pub cancel: CancelToken,
    pub reply: oneshot::Sender<JobResult>,
}

/// A review of one document to run. The worker owns its cancel token: the
/// async side stops it through [`Scheduler::cancel_review`].
pub struct ReviewJob {
    pub uri: Uri,
    /// Orders reviews of one document: higher is newer.
    pub seq: u64,
    /// Picks the review's rules by extension.
    pub path: Option<PathBuf>,
    pub text: String,
    pub options: ReviewOptions,
    /// Not asked for by the client (open, save, model load, settings): it
    /// gives way to a review of the same text and options already queued
    /// or running, whose findings would be the same.
    pub background: bool,
    pub reply: oneshot::Sender<JobResult<Review>>,
}

impl ReviewJob {
    /// What the review's findings depend on besides the model.
    fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        self.path.hash(&mut h);
        self.text.hash(&mut h);
        self.options.min_confidence.to_bits().hash(&mut h);
        self.options.max_sites.hash(&mut h);
        self.options.prompt_tokens.hash(&mut h);
        h.finish()
    }
}

/// Why a job produced no suggestion without failing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A newer request or an edit made it stale.
    Superseded,
    /// Its cancel token fired (the client cancelled, or the request was dropped).
    Cancelled,
    /// No model is loaded (yet).
    NotReady,
}

#[derive(Debug)]
pub enum JobResult<T = Box<Outcome>> {
    Done(T),
    Skipped(Skip),
    Failed(String),
}

/// Which model to load, on which device.
#[derive(Debug, Clone)]
pub struct LoadRequest {
    pub id: u64,
    pub model: Option<PathBuf>,
    pub options: SessionOptions,
    pub backend: crate::engine::Backend,
}

/// What the worker tells the async side about loading.
#[derive(Debug)]
pub enum Event {
    LoadStarted {
        id: u64,
        model: String,
    },
    Loaded {
        id: u64,
        model: String,
        device: String,
        /// Why `auto` did not pick CUDA, when it did not.
        note: Option<String>,
    },
    LoadFailed {
        id: u64,
        /// One line for a notification.
        message: String,
        /// The full error chain, for the log.
        detail: String,
    },
    /// The model's files changed on disk and reloading them failed; the
    /// copy read earlier keeps serving.
    ReloadFailed {
        message: String,
    },
}

/// A loaded engine and what to say about it.
pub struct Loaded {
    pub engine: Box<dyn Engine>,
    pub model: String,
    pub note: Option<String>,
}

/// Loads a model; runs on the worker thread.
pub type Loader = Box<dyn FnMut(&LoadRequest) -> Result<Loaded, anyhow::Error> + Send>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Loading,
    Ready,
    Error,
}

/// What `nib/status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub state: State,
    pub model: Option<String>,
    pub device: Option<String>,
    pub message: Option<String>,
    /// Why the latest completion or review failed (an inference server
    /// that went away); cleared by the next one that succeeds.
    pub last_error: Option<String>,
}

/// Counters of the work done, for `nib/status` and the benchmark.
#[derive(Debug, Default)]
pub struct Stats {
    /// Completion requests received.
    pub requests: AtomicU64,
    /// Requests dropped during their debounce wait (never queued).
    pub debounced: AtomicU64,
    /// Jobs replaced or dropped while queued.
    pub superseded: AtomicU64,
    /// Requests cancelled by the client during their debounce wait, and
    /// jobs whose cancel token fired before they started.
    pub cancelled: AtomicU64,
    /// Jobs stopped while running.
    pub interrupted: AtomicU64,
    /// Jobs that ran to the end.
    pub completed: AtomicU64,
    /// Jobs that ran to the end but whose answer was not used.
    pub discarded: AtomicU64,
    pub failed: AtomicU64,
    /// Answers with a suggestion that reached the client.
    pub shown: AtomicU64,
    /// Requests answered empty because no model was ready.
    pub not_ready: AtomicU64,
    /// Prompt tokens computed plus tokens generated, in all runs.
    pub tokens: AtomicU64,
    /// The same, in runs that were interrupted or discarded.
    pub wasted_tokens: AtomicU64,
    /// Time the engine spent, in microseconds, in all runs.
    pub busy_us: AtomicU64,
    /// The same, in runs that were interrupted or discarded.
    pub wasted_us: AtomicU64,
    pub reviews: ReviewStats,
}

/// Counters of review work.
#[derive(Debug, Default)]
pub struct ReviewStats {
    /// Reviews queued.
    pub requested: AtomicU64,
    /// Reviews that ran to the end.
    pub completed: AtomicU64,
    /// Runs stopped for a completion (the review then starts over).
    pub preempted: AtomicU64,
    /// Reviews replaced by a newer one, or stopped by an edit or a close.
    pub superseded: AtomicU64,
    /// Reviews whose requester went away, or that were stopped by shutdown.
    pub cancelled: AtomicU64,
    pub failed: AtomicU64,
    /// Findings published to the client.
    pub findings: AtomicU64,
    /// Time the engine spent reviewing, in microseconds.
    pub busy_us: AtomicU64,
}

/// The review part of `nib/status`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReviewReport {
    /// A review is running now.
    pub running: bool,
    /// Reviews waiting.
    pub queued: usize,
    pub requested: u64,
    pub completed: u64,
    pub preempted: u64,
    pub superseded: u64,
    pub cancelled: u64,
    pub failed: u64,
    pub findings: u64,
    pub busy_ms: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsReport {
    pub requests: u64,
    pub debounced: u64,
    pub superseded: u64,
    pub cancelled: u64,
    pub interrupted: u64,
    pub completed: u64,
    pub discarded: u64,
    pub failed: u64,
    pub shown: u64,
    pub not_ready: u64,
    pub tokens: u64,
    pub wasted_tokens: u64,
    pub busy_ms: f64,
    pub wasted_ms: f64,
}

impl Stats {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a run's work, as wasted when its result was not used.
    pub fn record_run(&self, outcome: &Outcome, elapsed: Duration, wasted: bool) {
        let t = &outcome.output;
        let tokens = (t.timings.prefill_tokens + t.tokens.len()) as u64;
        let us = elapsed.as_micros() as u64;
        self.tokens.fetch_add(tokens, Ordering::Relaxed);
        self.busy_us.fetch_add(us, Ordering::Relaxed);
        if wasted {
            self.wasted_tokens.fetch_add(tokens, Ordering::Relaxed);
            self.wasted_us.fetch_add(us, Ordering::Relaxed);
        }
    }

    /// A finished run whose answer arrived too late to use.
    pub fn record_discard(&self, outcome: &Outcome) {
        Self::bump(&self.discarded);
        let t = &outcome.output;
        let tokens = (t.timings.prefill_tokens + t.tokens.len()) as u64;
        let us = ((t.timings.prefill_ms + t.timings.decode_ms) * 1000.0) as u64;
        self.wasted_tokens.fetch_add(tokens, Ordering::Relaxed);
        self.wasted_us.fetch_add(us, Ordering::Relaxed);
    }

    pub fn report(&self) -> StatsReport {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        StatsReport {
            requests: get(&self.requests),
            debounced: get(&self.debounced),
            superseded: get(&self.superseded),
            cancelled: get(&self.cancelled),
            interrupted: get(&self.interrupted),
            completed: get(&self.completed),
            discarded: get(&self.discarded),
            failed: get(&self.failed),
            shown: get(&self.shown),
            not_ready: get(&self.not_ready),
            tokens: get(&self.tokens),
            wasted_tokens: get(&self.wasted_tokens),
            busy_ms: get(&self.busy_us) as f64 / 1000.0,
            wasted_ms: get(&self.wasted_us) as f64 / 1000.0,
        }
    }
}

struct Running {
    uri: Uri,
    seq: u64,
    cancel: CancelToken,
    kind: RunKind,
    /// A review's [`ReviewJob::fingerprint`].
    fingerprint: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunKind {
    Completion,
    /// `requeue`: stopped to let a completion run; it starts over afterwards.
    Review {
        requeue: bool,
    },
}

impl Running {
    /// Stops the job for good.
    fn stop(&mut self) {
        if let RunKind::Review { requeue } = &mut self.kind {
            *requeue = false;
        }
        self.cancel.cancel();
    }

    /// Stops a running review so that a completion can run; the review is
    /// queued again when it has stopped (unless stopped for good meanwhile).
    /// Returns whether it did.
    fn preempt(&mut self) -> bool {
        match &mut self.kind {
            RunKind::Review { requeue } if !self.cancel.is_cancelled() => {
                *requeue = true;
                self.cancel.cancel();
                true
            }
            _ => false,
        }
    }
}

struct Inner {
    queue: VecDeque<Job>,
    reviews: VecDeque<ReviewJob>,
    running: Option<Running>,
    load: Option<LoadRequest>,
    status: Status,
    shutdown: bool,
}

struct Shared {
    inner: Mutex<Inner>,
    wake: Condvar,
    stats: Stats,
}

/// The async side's handle on the worker. Cheap to clone.
#[derive(Clone)]
pub struct Scheduler {
    shared: Arc<Shared>,
}

impl Scheduler {
    /// Starts the worker thread. It loads nothing until [`Scheduler::load`].
    pub fn spawn(loader: Loader, events: mpsc::UnboundedSender<Event>) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            inner: Mutex::new(Inner {
                queue: VecDeque::new(),
                reviews: VecDeque::new(),
                running: None,
                load: None,
                status: Status {
                    state: State::Loading,
                    model: None,
                    device: None,
                    message: None,
                    last_error: None,
                },
                shutdown: false,
            }),
            wake: Condvar::new(),
            stats: Stats::default(),
        });
        let worker = Worker {
            shared: shared.clone(),
            loader,
            events,
            engine: None,
            loaded: None,
        };
        std::thread::Builder::new()
            .name("nib-inference".into())
            .spawn(move || worker.run())?;
        Ok(Self { shared })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub fn stats(&self) -> &Stats {
        &self.shared.stats
    }

    pub fn status(&self) -> Status {
        self.lock().status.clone()
    }

    /// The review counters, read under the queue's lock so that they agree
    /// with `running` and `queued` (reviews are counted under it too).
    pub fn review_report(&self) -> ReviewReport {
        let inner = self.lock();
        let running = inner
            .running
            .as_ref()
            .is_some_and(|r| matches!(r.kind, RunKind::Review { .. }));
        let queued = inner.reviews.len();
        let r = &self.shared.stats.reviews;
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        ReviewReport {
            running,
            queued,
            requested: get(&r.requested),
            completed: get(&r.completed),
            preempted: get(&r.preempted),
            superseded: get(&r.superseded),
            cancelled: get(&r.cancelled),
            failed: get(&r.failed),
            findings: get(&r.findings),
            busy_ms: get(&r.busy_us) as f64 / 1000.0,
        }
    }

    pub fn is_ready(&self) -> bool {
        self.lock().status.state == State::Ready
    }

    /// Replaces the engine: drops queued jobs, stops the running one and
    /// loads on the worker. Until it is loaded, requests get empty answers.
    pub fn load(&self, request: LoadRequest) {
        let mut inner = self.lock();
        inner.status = Status {
            state: State::Loading,
            model: request.model.as_ref().map(|p| p.display().to_string()),
            device: None,
            message: None,
            last_error: None,
        };
        for job in inner.queue.drain(..) {
            let _ = job.reply.send(JobResult::Skipped(Skip::NotReady));
        }
        for job in inner.reviews.drain(..) {
            let _ = job.reply.send(JobResult::Skipped(Skip::NotReady));
        }
        if let Some(running) = &mut inner.running {
            running.stop();
        }
        inner.load = Some(request);
        drop(inner);
        self.shared.wake.notify_all();
    }

    /// Queues a job, replacing (and answering) an older one for its document
    /// and stopping the document's running job, or pausing a running review.
    pub fn submit(&self, job: Job) {
        let mut inner = self.lock();
        if !inner.accepts_work() {
            drop(inner);
            Stats::bump(&self.shared.stats.not_ready);
            let _ = job.reply.send(JobResult::Skipped(Skip::NotReady));
            return;
        }
        if let Some(running) = &mut inner.running {
            match running.kind {
                RunKind::Completion if running.uri == job.uri && running.seq < job.seq => {
                    running.stop();
                }
                RunKind::Review { .. } => {
                    if running.preempt() {
                        Stats::bump(&self.shared.stats.reviews.preempted);
                    }
                }
                RunKind::Completion => {}
            }
        }
        if let Some(i) = inner.queue.iter().position(|j| j.uri == job.uri) {
            let old = std::mem::replace(&mut inner.queue[i], job);
            Stats::bump(&self.shared.stats.superseded);
            let _ = old.reply.send(JobResult::Skipped(Skip::Superseded));
        } else {
            inner.queue.push_back(job);
        }
        drop(inner);
        self.shared.wake.notify_all();
    }

    /// Queues a review, replacing (and answering) an older one of its
    /// document and stopping the document's running review. It runs when
    /// no completion waits.
    pub fn review(&self, job: ReviewJob) {
        let stats = &self.shared.stats.reviews;
        let mut inner = self.lock();
        Stats::bump(&stats.requested);
        if !inner.accepts_work() {
            drop(inner);
            let _ = job.reply.send(JobResult::Skipped(Skip::NotReady));
            return;
        }
        if job.background {
            let fingerprint = job.fingerprint();
            let running_same = inner.running.as_ref().is_some_and(|r| {
                r.kind != RunKind::Completion
                    && r.uri == job.uri
                    && r.fingerprint == fingerprint
                    && !r.cancel.is_cancelled()
            });
            let queued_same = inner
                .reviews
                .iter()
                .any(|j| j.uri == job.uri && j.fingerprint() == fingerprint);
            if running_same || queued_same {
                drop(inner);
                Stats::bump(&stats.superseded);
                let _ = job.reply.send(JobResult::Skipped(Skip::Superseded));
                return;
            }
        }
        if let Some(running) = &mut inner.running
            && running.kind != RunKind::Completion
            && running.uri == job.uri
            && running.seq < job.seq
        {
            running.stop();
        }
        if let Some(i) = inner.reviews.iter().position(|j| j.uri == job.uri) {
            let old = std::mem::replace(&mut inner.reviews[i], job);
            Stats::bump(&stats.superseded);
            let _ = old.reply.send(JobResult::Skipped(Skip::Superseded));
        } else {
            inner.reviews.push_back(job);
        }
        drop(inner);
        self.shared.wake.notify_all();
    }

    /// The requester of review `seq` of `uri` went away: stop or drop it.
    pub fn cancel_review(&self, uri: &Uri, seq: u64) {
        let mut inner = self.lock();
        if let Some(running) = &mut inner.running
            && running.kind != RunKind::Completion
            && &running.uri == uri
            && running.seq == seq
        {
            running.stop();
        }
        if let Some(i) = inner
            .reviews
            .iter()
            .position(|j| &j.uri == uri && j.seq == seq)
            && let Some(old) = inner.reviews.remove(i)
        {
            Stats::bump(&self.shared.stats.reviews.cancelled);
            let _ = old.reply.send(JobResult::Skipped(Skip::Cancelled));
        }
    }

    /// The document changed or closed: its queued and running jobs, reviews
    /// included, are stale.
    pub fn supersede(&self, uri: &Uri) {
        let mut inner = self.lock();
        if let Some(running) = &mut inner.running
            && &running.uri == uri
        {
            running.stop();
        }
        if let Some(i) = inner.queue.iter().position(|j| &j.uri == uri)
            && let Some(old) = inner.queue.remove(i)
        {
            Stats::bump(&self.shared.stats.superseded);
            let _ = old.reply.send(JobResult::Skipped(Skip::Superseded));
        }
        if let Some(i) = inner.reviews.iter().position(|j| &j.uri == uri)
            && let Some(old) = inner.reviews.remove(i)
        {
            Stats::bump(&self.shared.stats.reviews.superseded);
            let _ = old.reply.send(JobResult::Skipped(Skip::Superseded));
        }
    }

    /// Stops every queued and running review (review was turned off).
    pub fn cancel_reviews(&self) {
        let mut inner = self.lock();
        if let Some(running) = &mut inner.running
            && running.kind != RunKind::Completion
        {
            running.stop();
        }
        for job in inner.reviews.drain(..) {
            Stats::bump(&self.shared.stats.reviews.cancelled);
            let _ = job.reply.send(JobResult::Skipped(Skip::Cancelled));
        }
    }

    /// Stops the worker after its current step; pending jobs get empty answers.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        inner.shutdown = true;
        for job in inner.queue.drain(..) {
            let _ = job.reply.send(JobResult::Skipped(Skip::Cancelled));
        }
        for job in inner.reviews.drain(..) {
            let _ = job.reply.send(JobResult::Skipped(Skip::Cancelled));
        }
        if let Some(running) = &mut inner.running {
            running.stop();
        }
        drop(inner);
        self.shared.wake.notify_all();
    }
}

impl Inner {
    fn accepts_work(&self) -> bool {
        !self.shutdown && self.status.state == State::Ready && self.load.is_none()
    }
}

/// How long a model's files must stay unchanged before a reload: a copy
/// or download under way changes them again and again.
pub const RELOAD_QUIET: Duration = Duration::from_secs(2);

struct Worker {
    shared: Arc<Shared>,
    loader: Loader,
    events: mpsc::UnboundedSender<Event>,
    engine: Option<Box<dyn Engine>>,
    /// The request the engine came from, and its files' stamp then.
    loaded: Option<(LoadRequest, Stamp)>,
}

enum Next {
    Load(LoadRequest),
    Job(Job),
    Review(ReviewJob, CancelToken),
}

impl Worker {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.shared
            .inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn run(mut self) {
        loop {
            let next = {
                let mut inner = self.lock();
                loop {
                    if inner.shutdown {
                        return;
                    }
                    if let Some(load) = inner.load.take() {
                        break Next::Load(load);
                    }
                    if let Some(job) = inner.queue.pop_front() {
                        inner.running = Some(Running {
                            uri: job.uri.clone(),
                            seq: job.seq,
                            cancel: job.cancel.clone(),
                            kind: RunKind::Completion,
                            fingerprint: 0,
                        });
                        break Next::Job(job);
                    }
                    if let Some(job) = inner.reviews.pop_front() {
                        let cancel = CancelToken::new();
                        inner.running = Some(Running {
                            uri: job.uri.clone(),
                            seq: job.seq,
                            cancel: cancel.clone(),
                            kind: RunKind::Review { requeue: false },
                            fingerprint: job.fingerprint(),
                        });
                        break Next::Review(job, cancel);
                    }
                    inner = self
                        .shared
                        .wake
                        .wait(inner)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            if !matches!(next, Next::Load(_)) {
                self.reload_if_changed();
            }
            match next {
                Next::Load(request) => self.load(request),
                Next::Job(job) => {
                    self.run_job(job);
                    self.lock().running = None;
                }
                Next::Review(job, cancel) => self.run_review(job, &cancel),
            }
        }
    }

    /// Reloads the model when its files changed on disk since they were
    /// read, and have not changed for [`RELOAD_QUIET`]. The engine holds
    /// its own copy of them, so until then (and when the new files cannot
    /// be loaded, say half-written) it keeps serving what it read; a failed
    /// reload is retried after the next change.
    fn reload_if_changed(&mut self) {
        let (Some(engine), Some((request, stamp))) = (&self.engine, &mut self.loaded) else {
            return;
        };
        let now = Stamp::of(engine.source_files());
        if now == *stamp || !now.settled_since(stamp, RELOAD_QUIET) {
            // Unchanged, or still being written: looked at again next job.
            return;
        }
        *stamp = now;
        let request = request.clone();
        tracing::warn!("the model's files changed on disk; reloading");
        let result = self.call_loader(&request);
        match result {
            Ok(loaded) => {
                let device = loaded.engine.device().to_string();
                self.loaded = Some((request.clone(), Stamp::of(loaded.engine.source_files())));
                self.engine = Some(loaded.engine);
                {
                    let mut inner = self.lock();
                    inner.status.device = Some(device.clone());
                    inner.status.message = loaded.note.clone();
                }
                let _ = self.events.send(Event::Loaded {
                    id: request.id,
                    model: loaded.model,
                    device,
                    note: Some("reloaded: the model's files changed on disk".into()),
                });
            }
            Err(e) => {
                let message = format!(
                    "the model's files changed on disk and cannot be loaded ({e:#}); \
                     still serving the copy read earlier"
                );
                tracing::error!("{message}");
                self.lock().status.message = Some(message.clone());
                let _ = self.events.send(Event::ReloadFailed { message });
            }
        }
    }

    /// The loader's result, a panic in it being an error.
    fn call_loader(&mut self, request: &LoadRequest) -> Result<Loaded, anyhow::Error> {
        catch_unwind(AssertUnwindSafe(|| (self.loader)(request)))
            .unwrap_or_else(|_| Err(anyhow::anyhow!("loading the model panicked")))
    }

    fn load(&mut self, request: LoadRequest) {
        // Free the old model's memory before the new one takes its own.
        self.engine = None;
        self.loaded = None;
        let shown_model = request.model.as_ref().map_or_else(
            || "nib's default model".to_owned(),
            |p| p.display().to_string(),
        );
        let _ = self.events.send(Event::LoadStarted {
            id: request.id,
            model: shown_model,
        });
        let started = Instant::now();
        let result = self.call_loader(&request);
        let mut inner = self.lock();
        if inner.load.is_some() {
            // A newer configuration arrived while loading; it wins.
            return;
        }
        match result {
            Ok(loaded) => {
                let device = loaded.engine.device().to_string();
                tracing::info!(model = %loaded.model, %device, ms = started.elapsed().as_millis() as u64, "model ready");
                inner.status = Status {
                    state: State::Ready,
                    model: Some(loaded.model.clone()),
                    device: Some(device.clone()),
                    message: loaded.note.clone(),
                    last_error: None,
                };
                drop(inner);
                self.loaded = Some((request.clone(), Stamp::of(loaded.engine.source_files())));
                let _ = self.events.send(Event::Loaded {
                    id: request.id,
                    model: loaded.model,
                    device,
                    note: loaded.note,
                });
                self.engine = Some(loaded.engine);
            }
            Err(e) => {
                let message = e.to_string();
                let detail = format!("{e:#}");
                tracing::error!(error = %detail, "cannot load the model");
                inner.status = Status {
                    state: State::Error,
                    model: inner.status.model.clone(),
                    device: None,
                    message: Some(detail.clone()),
                    last_error: None,
                };
                drop(inner);
                let _ = self.events.send(Event::LoadFailed {
                    id: request.id,
                    message,
                    detail,
                });
            }
        }
    }

    fn run_job(&mut self, job: Job) {
        let stats = &self.shared.stats;
        if job.cancel.is_cancelled() || job.reply.is_closed() {
            Stats::bump(&stats.cancelled);
            let _ = job.reply.send(JobResult::Skipped(Skip::Cancelled));
            return;
        }
        let Some(engine) = self.engine.as_mut() else {
            Stats::bump(&stats.not_ready);
            let _ = job.reply.send(JobResult::Skipped(Skip::NotReady));
            return;
        };
        let mut control = job.cancel.clone();
        let started = Instant::now();
        let result = catch_unwind(AssertUnwindSafe(|| {
            complete_with(engine.as_mut(), &job.ctx, &job.options, &mut control)
        }));
        let elapsed = started.elapsed();
        match result {
            Ok(Ok(outcome)) => {
                self.lock().status.last_error = None;
                tracing::debug!(
                    ms = elapsed.as_secs_f64() * 1000.0,
                    prefill_ms = outcome.output.timings.prefill_ms,
                    decode_ms = outcome.output.timings.decode_ms,
                    prefill = outcome.output.timings.prefill_tokens,
                    reused = outcome.output.timings.reused_tokens,
                    generated = outcome.output.tokens.len(),
                    interrupted = outcome.interrupted,
                    "completion run"
                );
                if outcome.interrupted {
                    Stats::bump(&stats.interrupted);
                    stats.record_run(&outcome, elapsed, true);
                    let _ = job.reply.send(JobResult::Skipped(Skip::Cancelled));
                } else {
                    Stats::bump(&stats.completed);
                    let unused = job.reply.is_closed();
                    stats.record_run(&outcome, elapsed, unused);
                    if unused || job.reply.send(JobResult::Done(Box::new(outcome))).is_err() {
                        Stats::bump(&stats.discarded);
                    }
                }
            }
            Ok(Err(e)) => {
                Stats::bump(&stats.failed);
                tracing::warn!(error = %e, "completion failed");
                self.lock().status.last_error = Some(e.to_string());
                let _ = job.reply.send(JobResult::Failed(e.to_string()));
            }
            Err(_) => {
                Stats::bump(&stats.failed);
                self.engine_panicked();
                let _ = job
                    .reply
                    .send(JobResult::Failed("the engine panicked".into()));
            }
        }
    }

    fn run_review(&mut self, job: ReviewJob, cancel: &CancelToken) {
        let shared = self.shared.clone();
        let stats = &shared.stats.reviews;
        let result = if job.reply.is_closed() {
            Err(ReviewError::Cancelled)
        } else if let Some(engine) = self.engine.as_mut() {
            let started = Instant::now();
            let result = catch_unwind(AssertUnwindSafe(|| {
                review(
                    engine.as_mut(),
                    job.path.as_deref(),
                    &job.text,
                    &job.options,
                    cancel,
                )
            }));
            stats
                .busy_us
                .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            match result {
                Ok(r) => r,
                Err(_) => {
                    self.engine_panicked();
                    Stats::bump(&stats.failed);
                    self.lock().running = None;
                    let _ = job
                        .reply
                        .send(JobResult::Failed("the engine panicked".into()));
                    return;
                }
            }
        } else {
            self.lock().running = None;
            let _ = job.reply.send(JobResult::Skipped(Skip::NotReady));
            return;
        };
        let mut inner = self.lock();
        let requeue = matches!(
            inner.running.take(),
            Some(Running {
                kind: RunKind::Review { requeue: true },
                ..
            })
        );
        match result {
            Ok(review) => {
                Stats::bump(&stats.completed);
                inner.status.last_error = None;
                drop(inner);
                tracing::debug!(
                    sites = review.sites,
                    scored = review.scored,
                    findings = review.findings.len(),
                    "review run"
                );
                let _ = job.reply.send(JobResult::Done(review));
            }
            Err(ReviewError::Cancelled) => {
                let newer = inner.reviews.iter().any(|j| j.uri == job.uri);
                if requeue && !newer && !job.reply.is_closed() && inner.accepts_work() {
                    // Paused for a completion: starts over once no completion waits.
                    inner.reviews.push_front(job);
                } else {
                    drop(inner);
                    let skip = if job.reply.is_closed() {
                        Stats::bump(&stats.cancelled);
                        Skip::Cancelled
                    } else {
                        Stats::bump(&stats.superseded);
                        Skip::Superseded
                    };
                    let _ = job.reply.send(JobResult::Skipped(skip));
                }
            }
            Err(ReviewError::Engine(e)) => {
                inner.status.last_error = Some(e.to_string());
                drop(inner);
                Stats::bump(&stats.failed);
                tracing::warn!(error = %e, "review failed");
                let _ = job.reply.send(JobResult::Failed(e.to_string()));
            }
        }
    }

    /// A request panicked: it was answered with an error; the model stays
    /// (its weights are read-only) with its caches, which the panic may
    /// have left half-updated, cleared.
    fn engine_panicked(&mut self) {
        tracing::error!("a request panicked; the model stays loaded, its caches cleared");
        if let Some(engine) = self.engine.as_mut()
            && catch_unwind(AssertUnwindSafe(|| engine.reset())).is_err()
        {
            tracing::error!("resetting the engine panicked too; dropping the model");
            self.engine = None;
            let mut inner = self.lock();
            inner.status.state = State::Error;
            inner.status.message =
                Some("the engine failed; change a setting or restart to reload".into());
        }
    }
}
