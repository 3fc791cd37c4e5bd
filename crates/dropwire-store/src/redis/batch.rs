//! Claims: one `claim.lua` call decides a whole batch, and a batcher gathers the claims
//! that arrive together on this node into such batches.
//!
//! The batcher is one task fed by a bounded queue. It takes what is queued (up to
//! `max_batch`), splits it by drop (each drop is one hash tag, so one script call), and runs
//! the calls while it gathers the next batch; at most [`IN_FLIGHT`] batches are out at once,
//! so under load the queue fills and batches grow, which is the point: with
//! `appendfsync always` every script call is one fsync, shared by the whole batch.

use std::sync::Arc;
use std::time::Duration;

use dropwire_core::{Claim, ClaimCode, ClaimReason, DropId};
use futures_util::future::join_all;
use redis::AsyncCommands;
use tokio::sync::{Semaphore, mpsc, oneshot};

use super::conn::{wait_replicas, within};
use super::{RedisLink, bad_reply, code_key, key, parse};
use crate::{ClaimRequest, StoreError};

/// Batches in flight at once (they share one multiplexed connection).
const IN_FLIGHT: usize = 4;
/// Claims queued for the batcher at most (more callers wait for room, up to their patience).
const QUEUE: usize = 4096;
/// What [`StoreError::Stopped`] names when the batcher task is gone.
const BATCHER: &str = "claim batcher";

/// One claim and the code it gets if granted.
pub(super) struct BatchedClaim {
    pub req: ClaimRequest,
    pub code: ClaimCode,
}

/// The script's answer to one claim.
pub(super) enum Answer {
    Granted(Box<Claim>),
    Refused(ClaimReason),
    /// The code was taken (in this drop): nothing was written; ask again with another.
    CodeTaken,
    /// Fair start: entered in the draw at this time.
    Entered(u64),
}

/// Runs `claim.lua` once for `items` (all of drop `drop`), records the granted codes in the
/// code index, and waits for replicas if configured. One answer per item, in order.
pub(super) async fn run(
    shared: &RedisLink,
    drop: &DropId,
    items: &[BatchedClaim],
) -> Result<Vec<Result<Answer, StoreError>>, StoreError> {
    let mut inv = shared.scripts.claim.prepare_invoke();
    for part in [
        "conf", "stock", "granted", "per", "claims", "order", "rids", "refused", "scores", "holds",
        "events", "log", "members", "draw", "draws", "entrants",
    ] {
        inv.key(key(drop, part));
    }
    inv.arg(drop.as_str()).arg(items.len());
    for item in items {
        let r = &item.req;
        inv.arg(&r.sku)
            .arg(&r.viewer_id)
            .arg(&r.handle)
            .arg(&r.rid)
            .arg(shared.now_arg(r.now_ms))
            .arg(item.code.as_str())
            .arg(r.refusal.map_or("", ClaimReason::as_str))
            .arg(if r.members_only { "1" } else { "0" })
            .arg(r.draw_at_ms.map_or(String::new(), |at| at.to_string()))
            .arg(ticket_arg(r))
            .arg(r.now_ms)
            .arg(r.per_viewer_limit.map_or(String::new(), |n| n.to_string()));
    }
    // The claims' connection: `WAIT` below must follow the script on the same connection.
    let mut conn = shared.claim_conn.clone();
    let reply: Vec<String> = within(shared.limit(), inv.invoke_async(&mut conn)).await?;
    if reply.first().map(String::as_str) == Some("X") {
        return Err(StoreError::NoSuchDrop(drop.clone()));
    }
    if reply.len() < 2 * items.len() || !reply.len().is_multiple_of(2) {
        return Err(bad_reply("claim.lua", &reply));
    }
    let mut answers = Vec::with_capacity(items.len());
    let mut fresh: Vec<ClaimCode> = Vec::new();
    // After the answers: the claims a draw held in this call granted (code, deadline).
    let mut drawn_earliest: Option<u64> = None;
    for pair in reply[2 * items.len()..].chunks(2) {
        let code = ClaimCode::parse(&pair[0]).map_err(|_| bad_reply("claim.lua", &reply))?;
        let until: u64 = pair[1]
            .parse()
            .map_err(|_| bad_reply("claim.lua", &reply))?;
        fresh.push(code);
        drawn_earliest = Some(drawn_earliest.map_or(until, |e| e.min(until)));
    }
    for (pair, item) in reply[..2 * items.len()].chunks(2).zip(items) {
        let answer = match pair[0].as_str() {
            "G" => Answer::Granted(parse(&pair[1])?),
            "R" => Answer::Refused(reason(&pair[1])?),
            "C" => Answer::CodeTaken,
            "E" => Answer::Entered(
                pair[1]
                    .parse()
                    .map_err(|_| bad_reply("claim.lua", &reply))?,
            ),
            _ => return Err(bad_reply("claim.lua", &reply)),
        };
        if let Answer::Granted(c) = &answer
            && c.code == item.code
            && !fresh.contains(&c.code)
        {
            fresh.push(c.code.clone());
        }
        answers.push(answer);
    }
    let earliest = answers
        .iter()
        .filter_map(|a| match a {
            Answer::Granted(c) if fresh.contains(&c.code) => Some(c.hold_until_ms),
            _ => None,
        })
        .chain(drawn_earliest)
        .min();
    match earliest {
        // The code index and the index of due holds, together (other slots than the drop).
        Some(at) => {
            tokio::join!(
                index_codes(shared, drop, &fresh),
                super::holds::note_holds(shared, drop, at)
            );
        }
        None => index_codes(shared, drop, &fresh).await,
    }
    let any_granted =
        drawn_earliest.is_some() || answers.iter().any(|a| matches!(a, Answer::Granted(_)));
    if shared.wait_replicas > 0 && any_granted {
        let reached = within(
            shared.op_timeout * 2,
            wait_replicas(
                &mut conn,
                &key(drop, "claims"),
                shared.wait_replicas,
                shared.op_timeout,
            ),
        )
        .await?;
        if reached < shared.wait_replicas {
            // Granted (and durable on the primary) but not confirmed: the viewer hears
            // `unavailable`, and a retry with the same rid waits for the replicas again.
            return Ok(answers
                .into_iter()
                .map(|a| match a {
                    Answer::Granted(_) => Err(StoreError::TooFewReplicas {
                        wanted: shared.wait_replicas,
                        reached,
                    }),
                    other => Ok(other),
                })
                .collect());
        }
    }
    Ok(answers.into_iter().map(Ok).collect())
}

/// Writes `dw:code:CODE → drop` for fresh codes (one key per code, so in a cluster they live
/// on other nodes than the drop and cannot be part of its script). A failure is logged, not
/// returned: the claim itself is durable, and `redeem` finds an unindexed code by asking
/// every drop.
async fn index_codes(shared: &RedisLink, drop: &DropId, codes: &[ClaimCode]) {
    let writes = codes.iter().map(|code| {
        let mut conn = shared.conn.clone();
        async move {
            let options = redis::SetOptions::default().conditional_set(redis::ExistenceCheck::NX);
            let set = conn.set_options::<_, _, ()>(code_key(code), drop.as_str(), options);
            within(shared.op_timeout, set).await
        }
    });
    for failed in join_all(writes).await.into_iter().filter_map(Result::err) {
        tracing::warn!(drop = %drop, error = %failed, "claim code not indexed; redeem will search");
    }
}

/// The entry's ticket for `claim.lua`: the hub's, else one drawn here ('' without a draw).
/// (Randomness that fails here has failed the claim's code already, in [`super::RedisStore`].)
fn ticket_arg(r: &ClaimRequest) -> String {
    if r.draw_at_ms.is_none() {
        return String::new();
    }
    let t = r.ticket.unwrap_or_else(|| crate::new_ticket().unwrap_or(0));
    (t % crate::TICKET_LIMIT).to_string()
}

fn reason(raw: &str) -> Result<ClaimReason, StoreError> {
    Ok(match raw {
        "sold_out" => ClaimReason::SoldOut,
        "limit_reached" => ClaimReason::LimitReached,
        "not_open" => ClaimReason::NotOpen,
        "closed" => ClaimReason::Closed,
        other => return Err(bad_reply("claim.lua reason", &[other.to_owned()])),
    })
}

/// The same error for each caller of a failed batch: a missing drop is the caller's own
/// answer (`no_such_drop`), anything else the batch's failure, shared.
fn copy(e: &Arc<StoreError>) -> StoreError {
    match &**e {
        StoreError::NoSuchDrop(id) => StoreError::NoSuchDrop(id.clone()),
        _ => StoreError::Batch(Arc::clone(e)),
    }
}

/// A caller waiting for the answer to its claim.
struct WaitingCaller {
    claim: BatchedClaim,
    reply: oneshot::Sender<Result<Answer, StoreError>>,
}

/// Gathers concurrent claims into batches. Dropping the last handle stops its task.
#[derive(Debug)]
pub(super) struct Batcher {
    queue: mpsc::Sender<WaitingCaller>,
}

impl Batcher {
    /// Starts the batcher task on the current Tokio runtime.
    pub(super) fn start(shared: Arc<RedisLink>, max_batch: usize) -> Batcher {
        let (queue, rx) = mpsc::channel(QUEUE);
        tokio::spawn(gather(shared, rx, max_batch.max(1)));
        Batcher { queue }
    }

    /// Queues one claim and waits for its answer, at most `patience` in all. A full queue
    /// makes the caller wait for room (backpressure on the viewers asking) and answers
    /// `Busy` only if no room came within `patience`.
    pub(super) async fn claim(
        &self,
        claim: BatchedClaim,
        patience: Duration,
    ) -> Result<Answer, StoreError> {
        let deadline = tokio::time::Instant::now() + patience;
        let (reply, answer) = oneshot::channel();
        let queued =
            tokio::time::timeout_at(deadline, self.queue.send(WaitingCaller { claim, reply }));
        match queued.await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(StoreError::Stopped(BATCHER)),
            Err(_) => return Err(StoreError::Busy),
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StoreError::Stopped(BATCHER)),
            Err(_) => Err(StoreError::Timeout(patience)),
        }
    }
}

async fn gather(shared: Arc<RedisLink>, mut rx: mpsc::Receiver<WaitingCaller>, max_batch: usize) {
    let in_flight = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // While all batches are out, claims queue up and the next batch grows.
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            answer_batch(&shared, batch).await;
            drop(permit);
        });
    }
}

/// Splits a batch by drop (keeping arrival order within each) and runs one script per drop.
async fn answer_batch(shared: &RedisLink, batch: Vec<WaitingCaller>) {
    let mut groups: Vec<(DropId, Vec<BatchedClaim>, Vec<oneshot::Sender<_>>)> = Vec::new();
    for p in batch {
        let at = match groups
            .iter()
            .position(|(d, _, _)| *d == p.claim.req.drop_id)
        {
            Some(at) => at,
            None => {
                groups.push((p.claim.req.drop_id.clone(), Vec::new(), Vec::new()));
                groups.len() - 1
            }
        };
        groups[at].1.push(p.claim);
        groups[at].2.push(p.reply);
    }
    join_all(
        groups
            .into_iter()
            .map(|(drop, claims, replies)| async move {
                match run(shared, &drop, &claims).await {
                    Ok(answers) => {
                        for (reply, answer) in replies.into_iter().zip(answers) {
                            let _ = reply.send(answer);
                        }
                    }
                    Err(e) => {
                        let e = Arc::new(e);
                        for reply in replies {
                            let _ = reply.send(Err(copy(&e)));
                        }
                    }
                }
            }),
    )
    .await;
}
