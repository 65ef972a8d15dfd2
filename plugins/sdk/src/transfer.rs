//! Object uploads and downloads over HTTP with several in flight, for object-store
//! drivers (S3, Swift): a store says how to make and judge its requests
//! ([`ObjectRequests`]); this keeps up to N of them moving, retries the object (not the
//! backup) on connection errors and 5xx answers, and bounds memory to N objects.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::time::Duration;

use crate::DriverError;
use crate::chunked::Fetched;
use crate::http::{self, Body, Endpoint, Flights, HttpError, Pending, Request, Response, Timeouts};

/// What an answer means.
pub enum Verdict {
    Done(Response),
    /// Worth another try: why.
    Retry(String),
    Fail(DriverError),
}

/// Digests of an object's bytes, from the host for chunks.
#[derive(Debug, Clone)]
pub struct Digests {
    /// Empty where the store signs no payload (Swift).
    pub sha256: Vec<u8>,
    pub md5: Vec<u8>,
}

/// Tries, backoff and timeouts of a store's requests.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub attempts: u32,
    /// The wait before the second try; it doubles for each one after.
    pub backoff: Duration,
    pub timeouts: Timeouts,
    /// For messages: "S3 at 127.0.0.1:7480".
    pub label: String,
}

impl RetryPolicy {
    /// The backoff before try `attempt + 1`, in steps short enough that a cancel
    /// (force delete, reset-status) stops the operation within a second, not after it.
    fn wait(&self, attempt: u32) -> Result<(), DriverError> {
        const STEP: Duration = Duration::from_millis(100);
        let mut left = self.backoff * (1u32 << attempt.saturating_sub(1).min(6));
        if CLEANING.with(Cell::get) {
            // Removing a cancelled backup's objects: retried, within the host's grace.
            http::sleep(left.min(Duration::from_secs(1)));
            return Ok(());
        }
        loop {
            if cancelled() {
                return Err(DriverError::Cancelled);
            }
            if left.is_zero() {
                return Ok(());
            }
            let step = left.min(STEP);
            http::sleep(step);
            left -= step;
        }
    }

    pub fn gave_up(&self, last: &str) -> DriverError {
        DriverError::Io(format!("{} after {} tries: {last}", self.label, self.attempts))
    }
}

/// How a store makes and judges its requests.
pub trait ObjectRequests {
    /// The request storing an object with these digests (its body is sent separately).
    fn put_request(
        &self,
        container: &str,
        name: &str,
        digests: &Digests,
    ) -> Result<(Endpoint, Request<'static>), DriverError>;
    fn get_request(&self, container: &str, name: &str) -> Result<(Endpoint, Request<'static>), DriverError>;
    /// What an answer means; `md5`: the digest a stored object's answer must confirm.
    fn judge(&self, answer: Result<Response, HttpError>, what: &str, md5: Option<&[u8]>) -> Verdict;
    /// The MD5 a PUT's answer must confirm, if the store checks one.
    fn confirmed_md5<'a>(&self, digests: &'a Digests) -> Option<&'a [u8]>;
    fn policy(&self) -> &RetryPolicy;
}

/// Say in the backup's log that a request is tried again, and why.
pub fn retrying(label: &str, why: &str, attempt: u32) {
    #[cfg(target_arch = "wasm32")]
    crate::host::log(crate::Level::Warn, &format!("{label}: {why}; try {}", attempt + 1));
    #[cfg(not(target_arch = "wasm32"))]
    let _ = (label, why, attempt);
}

thread_local! {
    /// Set while a failed or cancelled backup removes its objects ([`cleaning`]).
    static CLEANING: Cell<bool> = const { Cell::new(false) };
}

/// While the guard lives, a retry's backoff no longer ends at the host's cancel (the
/// cancel is why this cleanup runs) but is cut to a second, so the cleanup's requests
/// are still tried again within the host's grace.
pub fn cleaning() -> impl Drop {
    struct Cleaning;
    impl Drop for Cleaning {
        fn drop(&mut self) {
            CLEANING.with(|c| c.set(false));
        }
    }
    CLEANING.with(|c| c.set(true));
    Cleaning
}

/// Whether the host wants the operation to stop (only a component can be asked).
fn cancelled() -> bool {
    #[cfg(target_arch = "wasm32")]
    return crate::host::cancelled();
    #[cfg(not(target_arch = "wasm32"))]
    false
}

/// Send one request and wait for it, retried as the policy says; `make` builds (and
/// signs) each try.
pub fn call(
    store: &impl ObjectRequests,
    what: &str,
    body: &[u8],
    md5: Option<&[u8]>,
    make: impl Fn() -> Result<(Endpoint, Request<'static>), DriverError>,
) -> Result<Response, DriverError> {
    attempts(store.policy(), body, &|answer| store.judge(answer, what, md5), make)
}

/// [`call`] without a body, its answers judged by `judge` instead of the store.
pub fn call_judged(
    store: &impl ObjectRequests,
    judge: &dyn Fn(Result<Response, HttpError>) -> Verdict,
    make: impl Fn() -> Result<(Endpoint, Request<'static>), DriverError>,
) -> Result<Response, DriverError> {
    attempts(store.policy(), &[], judge, make)
}

fn attempts(
    policy: &RetryPolicy,
    body: &[u8],
    judge: &dyn Fn(Result<Response, HttpError>) -> Verdict,
    make: impl Fn() -> Result<(Endpoint, Request<'static>), DriverError>,
) -> Result<Response, DriverError> {
    let mut last = String::new();
    for attempt in 0..policy.attempts {
        if attempt > 0 {
            policy.wait(attempt)?;
        }
        let (endpoint, request) = make()?;
        let answer = Pending::start(&endpoint, &request, Body::Bytes(body.to_vec()), policy.timeouts)
            .and_then(|mut p| p.finish());
        match judge(answer) {
            Verdict::Done(r) => return Ok(r),
            Verdict::Retry(why) => {
                if attempt + 1 < policy.attempts {
                    retrying(&policy.label, &why, attempt + 1);
                }
                last = why;
            }
            Verdict::Fail(e) => return Err(e),
        }
    }
    Err(policy.gave_up(&last))
}

/// Uploads in flight whose body is a chunk the host writes (`Body::Chunk`); the host
/// allows a driver six chunk handles (`holdfast_plugin_host::limits::MAX_LIVE_CHUNKS`).
const CHUNK_BODIES: usize = 4;

/// An upload in flight.
struct PutJob {
    container: String,
    name: String,
    digests: Digests,
    attempt: u32,
}

/// A store's uploads in flight, at most `max`. An error shows on a later call, at the
/// latest on [`Uploads::settle`]`(0)`, and every call after it returns it too, so a
/// failed upload is never mistaken for a stored one.
pub struct Uploads {
    flights: RefCell<Flights<PutJob>>,
    max: usize,
    failed: RefCell<Option<DriverError>>,
}

fn not_started(store: &impl ObjectRequests, e: HttpError, what: &str) -> DriverError {
    match store.judge(Err(e), what, None) {
        Verdict::Retry(why) => store.policy().gave_up(&why),
        Verdict::Fail(e) => e,
        Verdict::Done(_) => DriverError::Io(format!("{what}: no answer")),
    }
}

impl Uploads {
    pub fn new(max: usize) -> Uploads {
        Uploads { flights: RefCell::new(Flights::new(max)), max: max.max(1), failed: RefCell::new(None) }
    }

    /// Start storing `body` as `container/name`, once fewer than `max` are in flight.
    pub fn put(
        &self,
        store: &impl ObjectRequests,
        container: &str,
        name: &str,
        digests: Digests,
        body: Body,
    ) -> Result<(), DriverError> {
        self.settle(store, self.max - 1)?;
        // The host lets a driver keep a few chunks (6: these, the one in hand, one more);
        // past them an upload's bytes are copied into the driver, as before WIT 0.2.7.
        let body = match body {
            Body::Chunk(c) if self.flights.borrow().chunks_held() >= CHUNK_BODIES => Body::Bytes(c.stored_bytes()),
            other => other,
        };
        let job = PutJob { container: container.to_owned(), name: name.to_owned(), digests, attempt: 0 };
        self.launch(store, job, body)
    }

    fn launch(&self, store: &impl ObjectRequests, job: PutJob, body: Body) -> Result<(), DriverError> {
        let (endpoint, request) = store.put_request(&job.container, &job.name, &job.digests)?;
        match Pending::start(&endpoint, &request, body, store.policy().timeouts) {
            Ok(p) => {
                self.flights.borrow_mut().push(job, p);
                Ok(())
            }
            Err(e) => Err(not_started(store, e, &format!("PUT {}", job.name))),
        }
    }

    /// Wait until at most `left` uploads are in flight, retrying the ones that fail.
    pub fn settle(&self, store: &impl ObjectRequests, left: usize) -> Result<(), DriverError> {
        if let Some(e) = self.failed.borrow().clone() {
            return Err(e);
        }
        while self.flights.borrow().len() > left {
            if cancelled() {
                return Err(DriverError::Cancelled);
            }
            let next = self.flights.borrow_mut().next_done();
            let Some((job, answer, body)) = next else { break };
            let what = format!("PUT {}", job.name);
            let policy = store.policy();
            let outcome = match store.judge(answer, &what, store.confirmed_md5(&job.digests)) {
                Verdict::Done(r) if (200..300).contains(&r.status) => Ok(()),
                Verdict::Done(r) => Err(DriverError::Io(format!("{what}: HTTP {}", r.status))),
                Verdict::Retry(why) if job.attempt + 1 < policy.attempts => {
                    retrying(&policy.label, &why, job.attempt + 1);
                    policy
                        .wait(job.attempt + 1)
                        .and_then(|()| self.launch(store, PutJob { attempt: job.attempt + 1, ..job }, body))
                }
                Verdict::Retry(why) => Err(policy.gave_up(&why)),
                Verdict::Fail(e) => Err(e),
            };
            if let Err(e) = outcome {
                *self.failed.borrow_mut() = Some(e.clone());
                return Err(e);
            }
        }
        Ok(())
    }

    /// Stop: uploads still sending their body are dropped (the store never gets those
    /// objects), the ones already sent are waited for (their objects may exist, and the
    /// cleanup that follows must see them). What a cancelled backup does first.
    pub fn abandon(&self) {
        let flying = self.flights.borrow_mut().take_all();
        for (_, mut p) in flying {
            if !p.sending() {
                let _ = p.finish();
            }
        }
    }

    /// Let every upload end without retrying any, before the store is read or changed
    /// otherwise: a failed backup's cleanup must not race its own uploads.
    pub fn drain(&self) {
        loop {
            let next = self.flights.borrow_mut().next_done();
            if next.is_none() {
                return;
            }
        }
    }
}

/// Fetch `names` with up to `max` downloads in flight, handing each to `each` in order;
/// objects held (arrived early or coming) never exceed `max`.
pub fn get_each(
    store: &impl ObjectRequests,
    max: usize,
    container: &str,
    names: &[String],
    each: &mut dyn FnMut(usize, Fetched) -> Result<(), DriverError>,
) -> Result<(), DriverError> {
    let max = max.max(1);
    let policy = store.policy();
    let mut flights: Flights<(usize, u32)> = Flights::new(max);
    let mut arrived: BTreeMap<usize, Fetched> = BTreeMap::new();
    let (mut next, mut handed) = (0, 0);
    let start = |i: usize, attempt: u32, flights: &mut Flights<(usize, u32)>| -> Result<(), DriverError> {
        let (endpoint, request) = store.get_request(container, &names[i])?;
        match Pending::start(&endpoint, &request, Body::default(), policy.timeouts) {
            Ok(mut p) => {
                // The body stays in the host until the restore writes it (WIT 0.2.8).
                p.hold_in_host();
                flights.push((i, attempt), p);
                Ok(())
            }
            Err(e) => Err(not_started(store, e, &format!("GET {}", names[i]))),
        }
    };
    while handed < names.len() {
        while next < names.len() && flights.len() + arrived.len() < max {
            start(next, 0, &mut flights)?;
            next += 1;
        }
        if let Some(data) = arrived.remove(&handed) {
            each(handed, data)?;
            handed += 1;
            continue;
        }
        let Some(((i, attempt), answer, _)) = flights.next_done() else {
            return Err(DriverError::Io(format!("{}: a download went missing", policy.label)));
        };
        let what = format!("GET {}", names[i]);
        match store.judge(answer, &what, None) {
            Verdict::Done(r) if (200..300).contains(&r.status) => {
                arrived.insert(i, r.held.map_or(Fetched::Bytes(r.body), Fetched::Held));
            }
            Verdict::Done(r) if r.status == 404 => return Err(DriverError::NotFound(format!("{what}: HTTP 404"))),
            Verdict::Done(r) => return Err(DriverError::Io(format!("{what}: HTTP {}", r.status))),
            Verdict::Retry(why) if attempt + 1 < policy.attempts => {
                retrying(&policy.label, &why, attempt + 1);
                policy.wait(attempt + 1)?;
                start(i, attempt + 1, &mut flights)?;
            }
            Verdict::Retry(why) => return Err(policy.gave_up(&why)),
            Verdict::Fail(e) => return Err(e),
        }
    }
    Ok(())
}
