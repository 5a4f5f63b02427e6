//! A FAKE Kubernetes apiserver for tests, not a simulator of one: an in-memory object store
//! behind a `tower-test` mock service that a real `kube::Client` talks to.
//!
//! It serves the hearth.io resources of [`crds`] (cluster-scoped, with the status subresource
//! where the CRD declares one) and namespaced `coordination.k8s.io/v1` Leases: list, get,
//! create, replace (PUT), replace of `/status`, and delete with uid/resourceVersion
//! preconditions. Every write bumps one global resourceVersion; an update must carry the
//! current one (409 Conflict otherwise, with a `Status` body as the apiserver sends), creating
//! an existing name is 409 AlreadyExists, and a missing object is 404 NotFound.
//!
//! Not covered: watch, selectors, pagination, PATCH and server-side apply, schema validation,
//! defaulting, admission, generation, finalizers and graceful deletion, authn/authz, discovery.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use http::{Method, Request, Response, StatusCode};
use http_body_util::BodyExt;
use kube::client::Body;
use serde_json::{json, Value};

use crate::store::kube::crds;
use crate::store::validate::is_dns1123_subdomain;

type Objects = BTreeMap<(String, String), Value>;
type Hook = (String, String, Box<dyn FnOnce(&mut Value) + Send>);

/// Handle to a running fake: inspect requests, interfere with writes.
#[derive(Clone)]
pub(crate) struct FakeApiserver {
    state: Arc<Mutex<State>>,
}

struct State {
    objects: Objects,
    last_rv: u64,
    /// collection path -> has a status subresource
    collections: BTreeMap<String, bool>,
    before_next_write: Option<Hook>,
    requests: Vec<String>,
}

/// The parts of a request path: `/apis/G/V[/namespaces/NS]/PLURAL[/NAME[/SUB]]`.
struct Target {
    collection: String,
    name: Option<String>,
    /// The request is for the `/status` subresource.
    status: bool,
    /// The resource has a status subresource: writes to the main resource keep the status.
    has_status: bool,
}

impl FakeApiserver {
    /// Starts the fake on the current runtime and returns a client connected to it.
    pub(crate) fn start() -> (kube::Client, Self) {
        let mut collections: BTreeMap<String, bool> = crds()
            .into_iter()
            .map(|crd| {
                let v = &crd.spec.versions[0];
                let status = v.subresources.as_ref().is_some_and(|s| s.status.is_some());
                (
                    format!(
                        "/apis/{}/{}/{}",
                        crd.spec.group, v.name, crd.spec.names.plural
                    ),
                    status,
                )
            })
            .collect();
        collections.insert(
            "/apis/coordination.k8s.io/v1/namespaces/*/leases".into(),
            false,
        );
        let fake = Self {
            state: Arc::new(Mutex::new(State {
                objects: Objects::new(),
                last_rv: 0,
                collections,
                before_next_write: None,
                requests: Vec::new(),
            })),
        };
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let server = fake.clone();
        tokio::spawn(async move {
            while let Some((request, respond)) = handle.next_request().await {
                respond.send_response(server.serve(request).await);
            }
        });
        (kube::Client::new(service, "default"), fake)
    }

    /// Right before the next write is applied, changes the object `name` of `collection` (a
    /// path such as `/apis/hearth.io/v1alpha1/floatingips`) with `change` and bumps its
    /// resourceVersion, as if another client had written between the caller's read and write.
    pub(crate) fn before_next_write(
        &self,
        collection: &str,
        name: &str,
        change: impl FnOnce(&mut Value) + Send + 'static,
    ) {
        let hook = (
            collection.to_owned(),
            name.to_owned(),
            Box::new(change) as Box<_>,
        );
        self.state.lock().unwrap().before_next_write = Some(hook);
    }

    /// `METHOD path` of every request served so far.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.state.lock().unwrap().requests.clone()
    }

    async fn serve(&self, request: Request<Body>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let body = match body.collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(e) => return status(400, "BadRequest", &format!("reading the body: {e}"), ""),
        };
        let mut state = self.state.lock().unwrap();
        state
            .requests
            .push(format!("{} {}", parts.method, parts.uri.path()));
        let Some(target) = state.target(parts.uri.path()) else {
            return status(
                404,
                "NotFound",
                "the server could not find the requested resource",
                "",
            );
        };
        let body: Value = if body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return status(400, "BadRequest", &format!("bad JSON: {e}"), ""),
            }
        };
        if parts.method != Method::GET {
            if let Some((collection, name, change)) = state.before_next_write.take() {
                let rv = state.next_rv();
                let obj = state
                    .objects
                    .get_mut(&(collection, name))
                    .expect("hook on a missing object");
                change(obj);
                obj["metadata"]["resourceVersion"] = json!(rv);
            }
        }
        match (&parts.method, &target.name) {
            (&Method::GET, None) => state.list(&target),
            (&Method::GET, Some(name)) => match state
                .objects
                .get(&(target.collection.clone(), name.clone()))
            {
                Some(obj) => ok(200, obj),
                None => not_found(name),
            },
            (&Method::POST, None) => state.create(&target, body),
            (&Method::PUT, Some(name)) => state.replace(&target, name, body),
            (&Method::DELETE, Some(name)) => state.delete(&target, name, &body),
            _ => status(
                405,
                "MethodNotAllowed",
                "not supported by the fake apiserver",
                "",
            ),
        }
    }
}

impl State {
    fn target(&self, path: &str) -> Option<Target> {
        let seg: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut at = if seg.first() == Some(&"api") { 2 } else { 3 };
        let mut pattern = seg.get(..at)?.join("/");
        let mut collection = pattern.clone();
        if seg.get(at) == Some(&"namespaces") && seg.len() > at + 2 {
            pattern = format!("{pattern}/namespaces/*");
            collection = format!("{collection}/namespaces/{}", seg[at + 1]);
            at += 2;
        }
        let plural = seg.get(at)?;
        let has_status = *self.collections.get(&format!("/{pattern}/{plural}"))?;
        let status = match seg.get(at + 2) {
            None => false,
            Some(&"status") if has_status && seg.len() == at + 3 => true,
            Some(_) => return None,
        };
        Some(Target {
            collection: format!("/{collection}/{plural}"),
            name: seg.get(at + 1).map(|s| s.to_string()),
            status,
            has_status,
        })
    }

    fn next_rv(&mut self) -> String {
        self.last_rv += 1;
        self.last_rv.to_string()
    }

    fn list(&self, target: &Target) -> Response<Body> {
        let items: Vec<&Value> = self
            .objects
            .iter()
            .filter(|((collection, _), _)| *collection == target.collection)
            .map(|(_, obj)| obj)
            .collect();
        let list = json!({
            "apiVersion": "v1", "kind": "List",
            "metadata": {"resourceVersion": self.last_rv.to_string()},
            "items": items,
        });
        ok(200, &list)
    }

    fn create(&mut self, target: &Target, mut obj: Value) -> Response<Body> {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        if !is_dns1123_subdomain(&name) {
            return status(
                422,
                "Invalid",
                &format!("metadata.name: Invalid value: {name:?}"),
                &name,
            );
        }
        let key = (target.collection.clone(), name.clone());
        if self.objects.contains_key(&key) {
            return status(
                409,
                "AlreadyExists",
                &format!("{name:?} already exists"),
                &name,
            );
        }
        let rv = self.next_rv();
        obj["metadata"]["resourceVersion"] = json!(rv);
        obj["metadata"]["uid"] = json!(format!("fake-uid-{rv}"));
        obj["metadata"]["creationTimestamp"] = json!("2026-01-01T00:00:00Z");
        if target.has_status {
            obj.as_object_mut().map(|o| o.remove("status"));
        }
        self.objects.insert(key, obj.clone());
        ok(201, &obj)
    }

    fn replace(&mut self, target: &Target, name: &str, body: Value) -> Response<Body> {
        let key = (target.collection.clone(), name.to_owned());
        let Some(old) = self.objects.get(&key) else {
            return not_found(name);
        };
        if body["metadata"]["name"].as_str() != Some(name) {
            return status(
                400,
                "BadRequest",
                "the name of the object does not match the URL",
                name,
            );
        }
        let Some(sent_rv) = body["metadata"]["resourceVersion"]
            .as_str()
            .filter(|rv| !rv.is_empty())
        else {
            return status(
                422,
                "Invalid",
                "metadata.resourceVersion: must be specified for an update",
                name,
            );
        };
        if old["metadata"]["resourceVersion"].as_str() != Some(sent_rv) {
            return conflict(name, "the object has been modified; please apply your changes to the latest version and try again");
        }
        let mut new = if target.status {
            let mut new = old.clone();
            new["status"] = body["status"].clone();
            new
        } else {
            let mut new = body;
            if target.has_status {
                match old.get("status") {
                    Some(s) => new["status"] = s.clone(),
                    None => drop(new.as_object_mut().map(|o| o.remove("status"))),
                }
            }
            new["metadata"]["uid"] = old["metadata"]["uid"].clone();
            new["metadata"]["creationTimestamp"] = old["metadata"]["creationTimestamp"].clone();
            new
        };
        new["metadata"]["resourceVersion"] = json!(self.next_rv());
        self.objects.insert(key, new.clone());
        ok(200, &new)
    }

    fn delete(&mut self, target: &Target, name: &str, options: &Value) -> Response<Body> {
        let key = (target.collection.clone(), name.to_owned());
        let Some(old) = self.objects.get(&key) else {
            return not_found(name);
        };
        for field in ["uid", "resourceVersion"] {
            if let Some(want) = options["preconditions"][field].as_str() {
                if old["metadata"][field].as_str() != Some(want) {
                    return conflict(
                        name,
                        &format!("Precondition failed: {field} in precondition: {want}"),
                    );
                }
            }
        }
        let old = self.objects.remove(&key).unwrap_or_default();
        ok(200, &old)
    }
}

fn ok(code: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(StatusCode::from_u16(code).unwrap())
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

fn status(code: u16, reason: &str, message: &str, name: &str) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason,
        "details": {"name": name}, "code": code,
    });
    ok(code, &body)
}

fn not_found(name: &str) -> Response<Body> {
    status(404, "NotFound", &format!("{name:?} not found"), name)
}

fn conflict(name: &str, why: &str) -> Response<Body> {
    status(
        409,
        "Conflict",
        &format!("Operation cannot be fulfilled on {name:?}: {why}"),
        name,
    )
}
