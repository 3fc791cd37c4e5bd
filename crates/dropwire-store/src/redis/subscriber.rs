//! The task that holds a node's bus subscription: one RESP3 connection (or, on Redis
//! Cluster, the cluster connection, which subscribes each shard channel on its shard),
//! routing what arrives to each drop's bounded queue.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::cluster::ClusterClientBuilder;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, ProtocolVersion, PushInfo, PushKind};
use tokio::sync::{mpsc, oneshot};

use super::conn::copy_error;
use crate::StoreError;
use crate::bus::BusEvent;

/// Pushes waiting for the subscriber task (more are dropped and read back from the stream).
const PUSHES: usize = 4096;

pub(super) enum Command {
    Subscribe {
        channel: String,
        tx: mpsc::Sender<BusEvent>,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
}

/// How often the subscriber drops the channels whose queue is gone (a drop's hub retired)
/// and pings its connection.
const TIDY: Duration = Duration::from_secs(2);

/// The task that holds this node's subscription connection and routes pushes to drops.
pub(super) struct Subscriber {
    pub nodes: Vec<String>,
    pub sharded: bool,
    pub op_timeout: Duration,
    pub routes: HashMap<String, mpsc::Sender<BusEvent>>,
    pub connected: Arc<AtomicBool>,
}

/// Hands pushes to the subscriber task without blocking the connection: a full queue drops
/// the push (the gap check reads it back from the stream), except a disconnection, whose
/// loss is reported back.
fn push_sender(
    pushes: mpsc::Sender<PushInfo>,
) -> impl Fn(PushInfo) -> Result<(), mpsc::error::TrySendError<PushInfo>> + Send + Sync + 'static {
    move |push: PushInfo| {
        let disconnect = push.kind == PushKind::Disconnection;
        match pushes.try_send(push) {
            Ok(()) => Ok(()),
            Err(_) if !disconnect => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// Answers subscriptions with `error` while Redis is away, for `wait`.
async fn refuse_for(
    wait: Duration,
    commands: &mut mpsc::Receiver<Command>,
    error: &redis::RedisError,
) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            () = &mut sleep => return true,
            cmd = commands.recv() => match cmd {
                Some(Command::Subscribe { done, .. }) => {
                    let _ = done.send(Err(StoreError::Redis(copy_error(error))));
                }
                None => return false,
            },
        }
    }
}

impl Subscriber {
    fn subscribe_cmd(&self) -> &'static str {
        if self.sharded {
            "SSUBSCRIBE"
        } else {
            "SUBSCRIBE"
        }
    }

    /// Forgets the channels whose queue is gone (the drop's hub retired; a new hub's
    /// subscription replaces the route with an open queue first); returns them, to
    /// unsubscribe.
    fn closed_routes(&mut self) -> Vec<String> {
        let gone: Vec<String> = self
            .routes
            .iter()
            .filter(|(_, tx)| tx.is_closed())
            .map(|(channel, _)| channel.clone())
            .collect();
        for channel in &gone {
            self.routes.remove(channel);
        }
        gone
    }

    async fn connect(
        &self,
        pushes: mpsc::Sender<PushInfo>,
    ) -> Result<MultiplexedConnection, redis::RedisError> {
        let first = self.nodes.first().map_or("", String::as_str);
        let mut info = first.into_connection_info()?;
        info.redis.protocol = ProtocolVersion::RESP3;
        let client = redis::Client::open(info)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.op_timeout)
            .set_response_timeout(self.op_timeout)
            .set_push_sender(push_sender(pushes));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await?;
        if !self.routes.is_empty() {
            let channels: Vec<&String> = self.routes.keys().collect();
            redis::cmd(self.subscribe_cmd())
                .arg(channels)
                .exec_async(&mut conn)
                .await?;
        }
        Ok(conn)
    }

    fn route(&mut self, push: PushInfo) {
        if !matches!(push.kind, PushKind::Message | PushKind::SMessage) {
            return;
        }
        let mut data = push.data.into_iter();
        let (Some(channel), Some(payload)) = (data.next(), data.next()) else {
            return;
        };
        let (Ok(channel), Ok(payload)) = (
            redis::from_redis_value::<String>(&channel),
            redis::from_redis_value::<String>(&payload),
        ) else {
            return;
        };
        let event = match payload.strip_prefix("!log:") {
            Some(n) => match n.parse() {
                Ok(n) => BusEvent::LogChanged(n),
                Err(_) => return,
            },
            None => BusEvent::Broadcast(payload),
        };
        if let Some(tx) = self.routes.get(&channel) {
            // Full: dropped here, read back from the stream at the next gap.
            if let Err(mpsc::error::TrySendError::Closed(_)) = tx.try_send(event) {
                self.routes.remove(&channel);
            }
        }
    }

    pub async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut backoff = Duration::from_millis(50);
        let mut first = true;
        loop {
            let (push_tx, mut pushes) = mpsc::channel(PUSHES);
            // Drops whose hub has gone are not subscribed again.
            self.routes.retain(|_, tx| !tx.is_closed());
            let mut conn = match self.connect(push_tx).await {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "bus: cannot subscribe; retrying");
                    self.connected.store(false, Ordering::Release);
                    if !refuse_for(backoff, &mut commands, &e).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            };
            backoff = Duration::from_millis(50);
            self.connected.store(true, Ordering::Release);
            if !first {
                tracing::info!("bus: subscribed again");
                self.routes.retain(|_, tx| {
                    !matches!(
                        tx.try_send(BusEvent::Resubscribed),
                        Err(mpsc::error::TrySendError::Closed(_))
                    )
                });
            }
            first = false;
            let mut ping = tokio::time::interval(TIDY);
            loop {
                tokio::select! {
                    push = pushes.recv() => match push {
                        Some(push) if push.kind == PushKind::Disconnection => break,
                        Some(push) => self.route(push),
                        None => break,
                    },
                    cmd = commands.recv() => match cmd {
                        Some(Command::Subscribe { channel, tx, done }) => {
                            let mut sub = redis::cmd(self.subscribe_cmd());
                            sub.arg(&channel);
                            let sub = sub.exec_async(&mut conn);
                            match tokio::time::timeout(self.op_timeout * 2, sub).await {
                                Ok(Ok(())) => {
                                    self.routes.insert(channel, tx);
                                    let _ = done.send(Ok(()));
                                }
                                Ok(Err(e)) => {
                                    let _ = done.send(Err(e.into()));
                                    break;
                                }
                                Err(_) => {
                                    let _ = done.send(Err(StoreError::Timeout(self.op_timeout * 2)));
                                    break;
                                }
                            }
                        }
                        None => return,
                    },
                    _ = ping.tick() => {
                        let gone = self.closed_routes();
                        if !gone.is_empty() {
                            let mut unsub = redis::cmd(if self.sharded { "SUNSUBSCRIBE" } else { "UNSUBSCRIBE" });
                            unsub.arg(&gone);
                            let unsub = unsub.exec_async(&mut conn);
                            if !matches!(tokio::time::timeout(self.op_timeout * 2, unsub).await, Ok(Ok(()))) {
                                break;
                            }
                        }
                        let ping_cmd = redis::cmd("PING");
                        let alive = ping_cmd.exec_async(&mut conn);
                        if !matches!(tokio::time::timeout(self.op_timeout * 2, alive).await, Ok(Ok(()))) {
                            break;
                        }
                    }
                }
            }
            tracing::warn!("bus: subscription lost; reconnecting");
            self.connected.store(false, Ordering::Release);
        }
    }
}

impl Subscriber {
    /// On Redis Cluster: the cluster connection subscribes each drop's shard channel on the
    /// shard that owns it, and subscribes again by itself after a reconnect or a failover;
    /// each `ssubscribe` push is passed on as `Resubscribed` (the drop then reads anything
    /// it missed from its stream — a no-op after a first subscription).
    pub(crate) async fn run_cluster(mut self, mut commands: mpsc::Receiver<Command>) {
        let nodes = self.nodes.clone();
        let (push_tx, mut pushes) = mpsc::channel(PUSHES);
        let mut backoff = Duration::from_millis(50);
        let mut conn = loop {
            let client = ClusterClientBuilder::new(nodes.clone())
                .use_protocol(ProtocolVersion::RESP3)
                .push_sender(push_sender(push_tx.clone()))
                .connection_timeout(self.op_timeout)
                .response_timeout(self.op_timeout)
                .build();
            let connected = match client {
                Ok(client) => client.get_async_connection().await,
                Err(e) => Err(e),
            };
            match connected {
                Ok(conn) => break conn,
                Err(e) => {
                    tracing::warn!(error = %e, "bus: cannot reach the cluster; retrying");
                    if !refuse_for(backoff, &mut commands, &e).await {
                        return;
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                }
            }
        };
        self.connected.store(true, Ordering::Release);
        let mut tidy = tokio::time::interval(TIDY);
        loop {
            tokio::select! {
                _ = tidy.tick() => {
                    for channel in self.closed_routes() {
                        let unsub = conn.sunsubscribe(&channel);
                        match tokio::time::timeout(self.op_timeout * 2, unsub).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => tracing::debug!(%channel, error = %e, "bus: cannot unsubscribe"),
                            Err(_) => tracing::debug!(%channel, "bus: unsubscribing timed out"),
                        }
                    }
                }
                push = pushes.recv() => match push {
                    Some(push) if push.kind == PushKind::SSubscribe => self.resubscribed(&push),
                    Some(push) => self.route(push),
                    None => return,
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Subscribe { channel, tx, done }) => {
                        let sub = conn.ssubscribe(&channel);
                        let answer = match tokio::time::timeout(self.op_timeout * 2, sub).await {
                            Ok(Ok(())) => {
                                self.routes.insert(channel, tx);
                                Ok(())
                            }
                            Ok(Err(e)) => Err(e.into()),
                            Err(_) => Err(StoreError::Timeout(self.op_timeout * 2)),
                        };
                        let _ = done.send(answer);
                    }
                    None => return,
                },
            }
        }
    }

    fn resubscribed(&mut self, push: &PushInfo) {
        let channel = push
            .data
            .first()
            .and_then(|c| redis::from_redis_value::<String>(c).ok());
        if let Some(tx) = channel.and_then(|c| self.routes.get(&c)) {
            let _ = tx.try_send(BusEvent::Resubscribed);
        }
    }
}
