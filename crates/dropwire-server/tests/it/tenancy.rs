//! Makers as tenants: two makers A and B; A has a drop (live, with a claim and its
//! follow-up coupon), a recipe, a webhook endpoint (with a message), a waitlist entry and a
//! second token. Every admin route of the served OpenAPI document — so a route added later
//! cannot escape — is called with B's token, A's ids in its path: each answers 404 or 403,
//! and no answer (not even a route without path parameters, such as a list) shows A's data.
//! The same calls with A's token answer neither 404 nor 403 (but the operator-only routes,
//! 403 to every maker, `POST /api/v1/makers` among them). The operator's token still reads
//! everything (as A with `X-Dropwire-Maker`, and A's drop's data without it). Tokens,
//! revocation and the operator as a maker: `tenancy_tokens`.

use crate::common;

use anyhow::{Context, Result, bail, ensure};
use common::hooks::{self, join_waitlist};
use common::{ADMIN, TestServer};
use serde_json::{Value, json};

/// The routes only the operator may call (a maker gets 403).
const OPERATOR_ONLY: [(&str, &str); 9] = [
    ("post", "/api/v1/makers"),
    ("get", "/api/v1/makers"),
    ("post", "/api/v1/coops"),
    ("patch", "/api/v1/coops/{id}"),
    ("delete", "/api/v1/coops/{id}"),
    ("put", "/api/v1/coops/{id}/makers/{maker}"),
    ("delete", "/api/v1/coops/{id}/makers/{maker}"),
    ("get", "/api/v1/viewers/{viewer_id}/export"),
    ("delete", "/api/v1/viewers/{viewer_id}"),
];

pub async fn call(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String)> {
    call_as(server, token, None, method, path, body).await
}

/// [`call`], acting as `maker` (`X-Dropwire-Maker`) when one is given.
pub async fn call_as(
    server: &TestServer,
    token: &str,
    maker: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, String)> {
    let mut req = server
        .http
        .request(
            method.to_uppercase().parse()?,
            format!("{}{path}", server.base),
        )
        .bearer_auth(token);
    if let Some(maker) = maker {
        req = req.header("X-Dropwire-Maker", maker);
    }
    if path.starts_with("/api/v1/ledger/import") {
        req = req.body(body.map(Value::to_string).unwrap_or_default());
    } else if let Some(body) = body {
        req = req.json(body);
    }
    let resp = req.send().await?;
    Ok((resp.status().as_u16(), resp.text().await?))
}

pub async fn json_of(
    server: &TestServer,
    token: &str,
    method: &str,
    path: &str,
    body: Value,
) -> Result<Value> {
    let (status, text) = call(server, token, method, path, Some(&body)).await?;
    ensure!(
        (200..300).contains(&status),
        "{method} {path} → {status} {text}"
    );
    Ok(serde_json::from_str(&text)?)
}

/// What A owns, to put in paths, and what only A's data contains.
struct OfA {
    maker: String,
    drop: String,
    recipe: String,
    /// A co-op of A alone.
    coop: String,
    endpoint: String,
    msg: String,
    /// A chat message in A's drop.
    chat_msg: String,
    claim: String,
    coupon: String,
    viewer: String,
    spare_token_id: String,
    pass_rule: String,
    pass: String,
    /// Strings that appear only in A's data.
    markers: Vec<String>,
}

impl OfA {
    /// `template` with A's ids for its parameters (a parameter it does not know fails the
    /// test: teach it here).
    fn path(&self, template: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = template;
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').context("unclosed {")? + open;
            let name = &rest[open + 1..close];
            let before = &template[..template.len() - rest.len() + open];
            let value = match name {
                "id" if before.ends_with("/drops/") => &self.drop,
                "id" if before.ends_with("/recipes/") => &self.recipe,
                "id" if before.ends_with("/webhooks/") => &self.endpoint,
                "id" if before.ends_with("/makers/") => &self.maker,
                "id" if before.ends_with("/coops/") => &self.coop,
                "id" if before.ends_with("/passes/rules/") => &self.pass_rule,
                "id" if before.ends_with("/passes/") => &self.pass,
                "maker" => &self.maker,
                "msg_id" if before.ends_with("/chat/messages/") => &self.chat_msg,
                "msg_id" => &self.msg,
                "token_id" => &self.spare_token_id,
                "code" if before.ends_with("/claims/") => &self.claim,
                "code" if before.ends_with("/coupons/") => &self.coupon,
                "viewer_id" => &self.viewer,
                _ => bail!("{template}: teach the tenancy test the parameter {name:?}"),
            };
            out.push_str(&rest[..open]);
            out.push_str(value);
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        if template == "/api/v1/analytics/compare" {
            out.push_str(&format!("?drops={}", self.drop));
        }
        Ok(out)
    }

    /// A body each route reads (valid, so that a refusal is about whose data it is).
    fn body(&self, method: &str, template: &str) -> Option<Value> {
        let body = match (method, template) {
            ("post", "/api/v1/drops") => {
                json!({"recipe": self.recipe, "params": {"item": "Bowl"}})
            }
            ("post", "/api/v1/drops/{id}/fire") => json!({"cue": 0}),
            ("post", "/api/v1/drops/{id}/chat") => json!({"text": "hello"}),
            ("post", "/api/v1/drops/{id}/chat/mutes") => json!({"viewer_id": self.viewer}),
            ("put", "/api/v1/drops/{id}/chat/pin") => json!({"message_id": null}),
            ("post", "/api/v1/drops/{id}/recipe") => json!({"id": "lifted"}),
            ("post", "/api/v1/recipes") => recipe("copied", "Copied"),
            ("patch", "/api/v1/recipes/{id}") => json!({"description": "changed"}),
            ("post", "/api/v1/webhooks") => {
                json!({"url": "http://127.0.0.1:9/other", "events": ["*"]})
            }
            ("patch", "/api/v1/webhooks/{id}") => json!({"description": "changed"}),
            ("post", "/api/v1/webhooks/{id}/replay") => json!({"since": 0}),
            ("post", "/api/v1/makers") => json!({"name": "Third"}),
            ("post", "/api/v1/passes/rules") => {
                json!({"name": "Another rule", "earned_by": {"claims": 5}})
            }
            ("post", "/api/v1/coops") => json!({"name": "Another co-op"}),
            ("patch", "/api/v1/coops/{id}") => json!({"name": "Renamed co-op"}),
            ("post", "/api/v1/makers/{id}/tokens") => json!({"label": "more"}),
            ("put", "/api/v1/nurture") => json!({"steps": []}),
            ("post", "/api/v1/coupons/{code}/redeem") => json!({"amount_cents": 1000}),
            ("post", "/api/v1/ledger/import") => json!({"id": format!("imported:{}", self.drop),
                "kind": "viewer.attended", "drop_id": "elsewhere", "viewer_id": "zed", "at_ms": 1}),
            ("post", _) | ("put", _) | ("patch", _) => json!({}),
            _ => return None,
        };
        Some(body)
    }

    fn leaks(&self, text: &str) -> Option<&str> {
        self.markers
            .iter()
            .find(|m| text.contains(m.as_str()))
            .map(String::as_str)
    }
}

fn recipe(id: &str, name: &str) -> Value {
    json!({
        "id": id,
        "name": name,
        "params": [{"name": "item"}],
        "drop": {"title": "{{item}} live", "inventory": [{"sku": "bowl", "name": "{{item}}", "price_cents": 100, "stock": 3}],
                 "script": {"duration_s": 600, "cues": [{"at_s": 0, "type": "reveal", "sku": "bowl"}]}}
    })
}

/// Every admin operation of the served document: (method, path template).
async fn admin_routes(server: &TestServer) -> Result<Vec<(String, String)>> {
    let doc: Value = server
        .http
        .get(format!("{}/api/v1/openapi.json", server.base))
        .send()
        .await?
        .json()
        .await?;
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().context("paths")? {
        for (method, op) in item.as_object().context("a path item")? {
            let security = op["security"].as_array().cloned().unwrap_or_default();
            let admin_only = !security.is_empty()
                && security.iter().all(|s| {
                    s.as_object()
                        .is_some_and(|o| o.len() == 1 && o.contains_key("admin_token"))
                });
            if admin_only {
                out.push((method.clone(), path.clone()));
            }
        }
    }
    // Deletions last, so that what they remove is there for the other calls.
    out.sort_by_key(|(m, _)| m == "delete");
    Ok(out)
}

pub async fn make_maker(server: &TestServer, id: &str, name: &str) -> Result<(String, String)> {
    let made = json_of(
        server,
        ADMIN,
        "post",
        "/api/v1/makers",
        json!({"id": id, "name": name}),
    )
    .await?;
    let token = made["token"].as_str().context("token")?.to_owned();
    ensure!(token.starts_with("dwm_"), "{token}");
    Ok((
        token,
        made["token_id"].as_str().context("token_id")?.to_owned(),
    ))
}

/// A's things, made with A's token.
async fn furnish_a(server: &TestServer, a: &str) -> Result<OfA> {
    let recipe_id = json_of(
        server,
        a,
        "post",
        "/api/v1/recipes",
        recipe("a-bowls", "A secret recipe name"),
    )
    .await?["id"]
        .as_str()
        .context("recipe id")?
        .to_owned();
    let hook = json_of(
        server,
        a,
        "post",
        "/api/v1/webhooks",
        json!({"url": "http://127.0.0.1:9/a-secret-hook", "events": ["*"]}),
    )
    .await?;
    let endpoint = hook["id"].as_str().context("endpoint id")?.to_owned();
    let pass_rule = json_of(
        server,
        a,
        "post",
        "/api/v1/passes/rules",
        json!({"id": "a-buyers", "name": "A secret pass rule", "earned_by": {"claims": 1}}),
    )
    .await?["id"]
        .as_str()
        .context("pass rule id")?
        .to_owned();
    let mut spec = common::drop_spec("a-mugs", 5, 1, common::far_script());
    spec["title"] = json!("A secret drop title");
    spec["follow_up"] = json!({"coupon": {"percent_off": 15}});
    let drop = json_of(server, a, "post", "/api/v1/drops", spec).await?;
    let drop_id = drop["id"].as_str().context("drop id")?.to_owned();
    let obs_key = drop["obs_key"].as_str().context("obs_key")?.to_owned();
    let viewer_token = join_waitlist(server, &drop_id, "a-secret-fan", json!({})).await?;
    let (mut fan, _) = server.join(&drop_id, Some(&viewer_token), None).await?;
    fan.next_of("snapshot").await?;
    let waitlist = json_of(
        server,
        a,
        "get",
        &format!("/api/v1/drops/{drop_id}/waitlist"),
        Value::Null,
    )
    .await?;
    let viewer = waitlist["entries"][0]["viewer_id"]
        .as_str()
        .context("a viewer")?
        .to_owned();
    json_of(
        server,
        a,
        "post",
        &format!("/api/v1/drops/{drop_id}/start"),
        json!({}),
    )
    .await?;
    json_of(
        server,
        a,
        "post",
        &format!("/api/v1/drops/{drop_id}/fire"),
        json!({"cue": 1}),
    )
    .await?;
    let granted = fan.claim("mug", "r1").await?;
    let claim = granted["code"].as_str().context("a claim")?.to_owned();
    let coupon = granted["follow_up"]["coupon"]["code"]
        .as_str()
        .context("a coupon")?
        .to_owned();
    // The feed writes the facts (and the coupon, the webhook message) off the claim path.
    let deliveries = format!("/api/v1/webhooks/{endpoint}/deliveries");
    common::eventually("A's facts and messages are in the ledger", || async {
        let (kpi, _) = call(
            server,
            a,
            "get",
            &format!("/api/v1/analytics/drops/{drop_id}"),
            None,
        )
        .await?;
        let (_, text) = call(server, a, "get", &deliveries, None).await?;
        let list: Value = serde_json::from_str(&text)?;
        let granted = list["deliveries"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["event"] == "claim.granted"));
        Ok(kpi == 200 && granted)
    })
    .await?;
    let list = json_of(server, a, "get", &deliveries, Value::Null).await?;
    let msg = list["deliveries"][0]["msg_id"]
        .as_str()
        .context("a message")?
        .to_owned();
    // The claim earned A's pass in the transaction of its fact.
    let passes = json_of(
        server,
        a,
        "get",
        &format!("/api/v1/viewers/{viewer}/passes"),
        Value::Null,
    )
    .await?;
    let pass = passes["passes"][0]["id"]
        .as_str()
        .context("a pass")?
        .to_owned();
    let spare = json_of(
        server,
        a,
        "post",
        "/api/v1/makers/maker-a/tokens",
        json!({"label": "spare"}),
    )
    .await?;
    let coop = json_of(
        server,
        ADMIN,
        "post",
        "/api/v1/coops",
        json!({"id": "a-circle", "name": "A secret co-op", "makers": ["maker-a"]}),
    )
    .await?;
    let chat = json_of(
        server,
        a,
        "post",
        &format!("/api/v1/drops/{drop_id}/chat"),
        json!({"text": "A secret chat line"}),
    )
    .await?;
    Ok(OfA {
        chat_msg: chat["id"].as_str().context("chat message id")?.to_owned(),
        maker: "maker-a".into(),
        drop: drop_id,
        recipe: recipe_id,
        coop: coop["id"].as_str().context("co-op id")?.to_owned(),
        endpoint,
        msg,
        claim,
        coupon,
        viewer,
        spare_token_id: spare["id"].as_str().context("token id")?.to_owned(),
        pass_rule,
        pass,
        markers: vec![
            "A secret drop title".into(),
            "A secret recipe name".into(),
            "A secret co-op".into(),
            "A secret chat line".into(),
            "A secret pass rule".into(),
            "a-secret-hook".into(),
            "a-secret-fan".into(),
            obs_key,
            hook["secret"].as_str().context("secret")?.to_owned(),
        ],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_maker_reads_and_changes_nothing_of_another_maker() -> Result<()> {
    let server = hooks::hub(&[3600]).await?;
    let (a, _) = make_maker(&server, "maker-a", "Maker A").await?;
    let (b, _) = make_maker(&server, "maker-b", "Maker B").await?;
    let of_a = furnish_a(&server, &a).await?;
    let routes = admin_routes(&server).await?;
    ensure!(
        routes.len() > 40,
        "the document lists the admin routes: {routes:?}"
    );

    for (method, template) in &routes {
        let path = of_a.path(template)?;
        let body = of_a.body(method, template);
        let (status, text) = call(&server, &b, method, &path, body.as_ref()).await?;
        let what = format!("B: {method} {path} → {status} {text}");
        ensure!(
            of_a.leaks(&text).is_none(),
            "{what}: shows A's {:?}",
            of_a.leaks(&text)
        );
        if OPERATOR_ONLY.contains(&(method.as_str(), template.as_str())) {
            ensure!(status == 403, "{what}: operator only");
        } else if template.contains('{') {
            ensure!(status == 404 || status == 403, "{what}: A's, not B's");
        } else {
            ensure!(status != 401 && status < 500, "{what}");
        }
    }

    // The operator reads everything: as maker A (X-Dropwire-Maker), and a drop's data
    // without the header too (it sees every maker's drops).
    for (method, template) in routes.iter().filter(|(m, _)| m == "get") {
        let path = of_a.path(template)?;
        let (status, text) = call_as(&server, ADMIN, Some("maker-a"), method, &path, None).await?;
        ensure!(
            (200..300).contains(&status),
            "operator as A: GET {path} → {status} {text}"
        );
        if template.starts_with("/api/v1/drops/")
            || template.starts_with("/api/v1/analytics/drops/")
        {
            let (status, text) = call(&server, ADMIN, method, &path, None).await?;
            ensure!(
                (200..300).contains(&status),
                "operator: GET {path} → {status} {text}"
            );
        }
    }
    let listed = json_of(&server, ADMIN, "get", "/api/v1/drops", Value::Null).await?;
    ensure!(
        listed.to_string().contains(&of_a.drop),
        "the operator lists A's drop"
    );

    for (method, template) in &routes {
        let path = of_a.path(template)?;
        let body = of_a.body(method, template);
        let (status, text) = call(&server, &a, method, &path, body.as_ref()).await?;
        let what = format!("A: {method} {path} → {status} {text}");
        if OPERATOR_ONLY.contains(&(method.as_str(), template.as_str())) {
            ensure!(status == 403, "{what}: operator only");
        } else {
            ensure!(
                status != 404 && status != 403 && status != 401,
                "{what}: A's own"
            );
        }
    }

    // The spare token was revoked by the DELETE above: refused with 401 at once.
    let spare = json_of(
        &server,
        a.as_str(),
        "get",
        "/api/v1/makers/maker-a",
        Value::Null,
    )
    .await?;
    let revoked = spare["tokens"]
        .as_array()
        .context("tokens")?
        .iter()
        .find(|t| t["id"] == of_a.spare_token_id.as_str())
        .context("the spare token")?;
    ensure!(revoked["revoked_ms"].is_u64(), "{revoked}");
    Ok(())
}
