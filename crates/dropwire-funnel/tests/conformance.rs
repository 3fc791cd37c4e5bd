//! The ledger conformance suite on embedded SQLite and on a real PostgreSQL (one server for
//! the whole binary, a fresh database per test).

use std::sync::OnceLock;

use dropwire_funnel::Ledger;
use dropwire_funnel::conformance::PgServer;

mod sqlite {
    use super::*;
    dropwire_funnel::ledger_conformance_tests!(async {
        let dir = tempfile::tempdir().expect("tempdir").keep();
        let url = format!("sqlite:{}", dir.join("ledger.sqlite3").display());
        Ledger::open(&url).await.expect("open sqlite")
    });
}

fn postgres() -> &'static PgServer {
    static SERVER: OnceLock<PgServer> = OnceLock::new();
    SERVER.get_or_init(PgServer::start)
}

mod postgres {
    use super::*;
    dropwire_funnel::ledger_conformance_tests!(async {
        let name = format!(
            "t{}",
            dropwire_funnel::conformance::fresh("db").replace('-', "_")
        );
        let url = postgres().create_database(&name);
        Ledger::open(&url).await.expect("open postgres")
    });
}

#[tokio::test]
async fn a_reopened_sqlite_ledger_keeps_everything() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite:{}", dir.path().join("ledger.sqlite3").display());
    let ledger = Ledger::open(&url).await.expect("open");
    let fact = dropwire_core::Fact::attended("mugs", "ana", 5);
    assert_eq!(
        ledger
            .record(std::slice::from_ref(&fact))
            .await
            .expect("record"),
        1
    );
    ledger.close().await;
    let again = Ledger::open(&url).await.expect("reopen");
    let read = again.facts(&Default::default()).await.expect("read");
    assert_eq!(read.len(), 1);
    assert_eq!(read[0].fact, fact);
    assert_eq!(again.record(&[fact]).await.expect("again"), 0);
    assert!(Ledger::open("mysql://nope").await.is_err());
}

#[test]
fn pass_rules_are_validated() {
    dropwire_funnel::conformance::rules_are_validated();
}
