//! The connection to Redis: one node (a reconnecting [`ConnectionManager`]) or a cluster
//! (a [`ClusterConnection`] that follows the slot map), behind one type, with every call
//! bounded in time.

use std::future::Future;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{Cmd, RedisError, RedisFuture, RedisResult, Value};

use super::RedisStoreConfig;
use crate::StoreError;

/// A multiplexed connection to one Redis node or to a cluster. Cheap to clone.
#[derive(Clone)]
pub(super) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Opens the connection `config` describes, within a few operation timeouts.
pub(super) async fn connect(config: &RedisStoreConfig) -> Result<Conn, StoreError> {
    let patience = config.op_timeout * 4;
    let opening = async {
        if config.cluster {
            let client = ClusterClientBuilder::new(config.nodes.clone())
                .connection_timeout(config.op_timeout)
                .response_timeout(config.op_timeout)
                .retries(1)
                .min_retry_wait(10)
                .max_retry_wait(100)
                .build()?;
            Ok::<_, RedisError>(Conn::Cluster(client.get_async_connection().await?))
        } else {
            let first = config.nodes.first().map_or("", String::as_str);
            let client = redis::Client::open(first)?;
            let manager = ConnectionManagerConfig::new()
                .set_connection_timeout(config.op_timeout)
                .set_response_timeout(config.op_timeout)
                .set_number_of_retries(1)
                .set_max_delay(1000);
            Ok(Conn::Single(
                ConnectionManager::new_with_config(client, manager).await?,
            ))
        }
    };
    match tokio::time::timeout(patience, opening).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(StoreError::Timeout(patience)),
    }
}

/// Runs one Redis call, giving up after `limit` (the connection's own timeouts normally
/// answer first; this bounds reconnect waits too).
pub(super) async fn within<T>(
    limit: Duration,
    call: impl Future<Output = RedisResult<T>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(limit)),
    }
}

/// The same failure again, for each subscriber refused while Redis is away (a
/// `RedisError` is not `Clone`); what `is_timeout`, `is_connection_dropped` and `kind` say
/// is kept.
pub(super) fn copy_error(e: &RedisError) -> RedisError {
    use std::io::ErrorKind as Io;
    let io = if e.is_timeout() {
        Some(Io::TimedOut)
    } else if e.is_connection_refusal() {
        Some(Io::ConnectionRefused)
    } else if e.is_connection_dropped() {
        Some(Io::ConnectionReset)
    } else {
        None
    };
    match io {
        Some(kind) => RedisError::from(std::io::Error::new(kind, e.to_string())),
        None => RedisError::from((e.kind(), "redis is away", e.to_string())),
    }
}

/// `WAIT wanted timeout` on the node that owns `key` (in a cluster, the primary of the
/// key's slot: only that node's replicas matter). Returns how many replicas confirmed.
pub(super) async fn wait_replicas(
    conn: &mut Conn,
    key: &str,
    wanted: u32,
    timeout: Duration,
) -> RedisResult<u32> {
    let mut cmd = redis::cmd("WAIT");
    cmd.arg(wanted).arg(timeout.as_millis() as u64);
    match conn {
        Conn::Single(c) => cmd.query_async(c).await,
        Conn::Cluster(c) => {
            let route = Route::new(key_slot(key.as_bytes()), SlotAddr::Master);
            let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(route));
            let value = c.route_command(&cmd, routing).await?;
            redis::from_redis_value(&value)
        }
    }
}

/// The cluster slot of a key: CRC16/XMODEM of its hash tag (or of the whole key), mod 16384.
pub(super) fn key_slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tagged {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT`.
        assert_eq!(key_slot(b"foo"), 12182);
        assert_eq!(key_slot(b"123456789"), 12739);
        assert_eq!(key_slot(b"dw:{drop:a}:stock"), key_slot(b"drop:a"));
        assert_eq!(key_slot(b"{}x"), key_slot(b"{}x"));
        assert_ne!(key_slot(b"{}x"), key_slot(b"x"));
    }
}
