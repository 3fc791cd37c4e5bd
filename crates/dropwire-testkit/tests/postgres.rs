//! A real PostgreSQL: started, a database created and queried with `psql`, restarted on the
//! same port and data directory, queried again, dropped (and then nothing answers on its port).

use std::net::TcpStream;

use dropwire_testkit::PgServer;

#[test]
fn starts_creates_a_database_restarts_and_stops() {
    let mut pg = PgServer::start();
    let port = pg.port;
    assert_eq!(
        pg.url(),
        format!("postgres://postgres@127.0.0.1:{port}/postgres")
    );

    let url = pg.create_database("testkit_one");
    assert_eq!(
        url,
        format!("postgres://postgres@127.0.0.1:{port}/testkit_one")
    );
    assert_eq!(pg.psql("testkit_one", "select 1"), "1");
    pg.psql(
        "testkit_one",
        "create table t (v int); insert into t values (42)",
    );

    pg.restart();
    assert_eq!(pg.port, port);
    assert_eq!(pg.psql("testkit_one", "select v from t"), "42");

    // A crash, then a start with crash recovery.
    pg.kill9();
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
    pg.restart();
    assert_eq!(pg.psql("testkit_one", "select v from t"), "42");

    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "something still answers on port {port}"
    );
}
