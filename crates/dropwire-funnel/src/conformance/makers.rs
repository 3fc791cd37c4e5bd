//! Makers: created once per id with a first token, more tokens, revocation; a token is
//! found by its hash only while it is valid.

use super::{T0, fresh};
use crate::{Ledger, NewToken, TokenOwner};

fn token(id: &str, hash: &str) -> NewToken {
    NewToken {
        id: id.into(),
        label: format!("label of {id}"),
        hash: hash.into(),
    }
}

pub async fn makers_and_their_tokens_are_kept_and_revoked(ledger: &Ledger) {
    let id = fresh("maker");
    let (t1, h1) = (fresh("tok"), fresh("hash"));
    let made = ledger
        .create_maker(&id, "Clay Co", &token(&t1, &h1), T0)
        .await
        .expect("create")
        .expect("new");
    assert_eq!(
        (made.id.as_str(), made.name.as_str(), made.created_ms),
        (id.as_str(), "Clay Co", T0)
    );
    let again = ledger
        .create_maker(&id, "Other", &token(&fresh("tok"), &fresh("hash")), T0 + 1)
        .await
        .expect("create again");
    assert_eq!(again, None, "the id is taken");
    assert_eq!(ledger.maker(&id).await.expect("read"), Some(made.clone()));
    assert!(ledger.makers().await.expect("list").contains(&made));
    assert_eq!(ledger.maker(&fresh("nobody")).await.expect("read"), None);

    let owner = TokenOwner {
        maker: id.clone(),
        token_id: t1.clone(),
    };
    assert_eq!(
        ledger.token_owner(&h1).await.expect("find"),
        Some(owner.clone())
    );
    assert_eq!(
        ledger.token_owner(&fresh("hash")).await.expect("find"),
        None
    );

    let (t2, h2) = (fresh("tok"), fresh("hash"));
    let second = ledger
        .add_maker_token(&id, &token(&t2, &h2), T0 + 2)
        .await
        .expect("add")
        .expect("a maker");
    assert_eq!((second.created_ms, second.revoked_ms), (T0 + 2, None));
    assert_eq!(
        ledger
            .add_maker_token(&fresh("nobody"), &token(&fresh("tok"), &fresh("hash")), T0)
            .await
            .expect("add"),
        None,
        "no such maker"
    );
    let tokens = ledger.maker_tokens(&id).await.expect("tokens");
    assert_eq!(
        tokens.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
        [t1.as_str(), t2.as_str()]
    );
    assert_eq!(tokens[0].label, format!("label of {t1}"));

    let revoked = ledger
        .revoke_maker_token(&id, &t1, T0 + 3)
        .await
        .expect("revoke")
        .expect("its token");
    assert_eq!(revoked.revoked_ms, Some(T0 + 3));
    assert_eq!(
        ledger.token_owner(&h1).await.expect("find"),
        None,
        "revoked"
    );
    let twice = ledger
        .revoke_maker_token(&id, &t1, T0 + 9)
        .await
        .expect("revoke again")
        .expect("its token");
    assert_eq!(
        twice.revoked_ms,
        Some(T0 + 3),
        "the first revocation stands"
    );
    assert_eq!(
        ledger
            .token_owner(&h2)
            .await
            .expect("find")
            .map(|o| o.token_id),
        Some(t2.clone()),
        "the other token still works"
    );
    let other = fresh("other");
    ledger
        .create_maker(&other, "Other", &token(&fresh("tok"), &fresh("hash")), T0)
        .await
        .expect("create")
        .expect("new");
    assert_eq!(
        ledger
            .revoke_maker_token(&other, &t2, T0 + 4)
            .await
            .expect("revoke"),
        None,
        "another maker's token is not found"
    );
    assert!(ledger.token_owner(&h2).await.expect("find").is_some());
}
