//! Watch semantics, kube-runtime watcher and a Controller with a finalizer.
mod common;
use common::*;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{
    Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams,
};
use kube::runtime::{WatchStreamExt, watcher};
use kube_test::ApiServer;
use serde_json::json;
use std::time::Duration;

fn cm(name: &str, labels: serde_json::Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "labels": labels}})).unwrap()
}

/// Next event, skipping periodic bookmarks.
async fn next_event<S>(s: &mut S) -> WatchEvent<ConfigMap>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    loop {
        match next_raw(s).await {
            WatchEvent::Bookmark(b)
                if !b
                    .metadata
                    .annotations
                    .contains_key("k8s.io/initial-events-end") =>
            {
                continue;
            }
            other => return other,
        }
    }
}

async fn next_raw<S>(s: &mut S) -> WatchEvent<ConfigMap>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<ConfigMap>>> + Unpin,
{
    tokio::time::timeout(Duration::from_secs(5), s.next())
        .await
        .expect("event in time")
        .expect("stream open")
        .expect("ok event")
}

#[tokio::test]
async fn raw_watch_sees_create_modify_delete_in_order() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut w = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    cms.patch(
        "a",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"x": "1"}})),
    )
    .await
    .unwrap();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    let mut seen = vec![];
    let mut last_rv = 0u64;
    for _ in 0..3 {
        let (t, o) = match next_event(&mut w).await {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            other => panic!("unexpected {other:?}"),
        };
        let rv: u64 = o.metadata.resource_version.unwrap().parse().unwrap();
        assert!(rv > last_rv, "resourceVersions increase");
        last_rv = rv;
        seen.push(t);
    }
    assert_eq!(seen, ["ADDED", "MODIFIED", "DELETED"]);

    // resuming from an older version replays history
    let mut w = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_event(&mut w).await, WatchEvent::Added(_)));
}

#[tokio::test]
async fn watch_with_label_selector_sees_objects_leave_and_enter() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut w = cms
        .watch(&WatchParams::default().labels("app=x"), &rv)
        .await
        .unwrap()
        .boxed();
    cms.create(&PostParams::default(), &cm("other", json!({"app": "y"})))
        .await
        .unwrap();
    cms.create(&PostParams::default(), &cm("l", json!({"app": "x"})))
        .await
        .unwrap();
    assert!(
        matches!(next_event(&mut w).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("l"))
    );
    cms.patch(
        "l",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "z"}}})),
    )
    .await
    .unwrap();
    assert!(matches!(next_event(&mut w).await, WatchEvent::Deleted(_)));
    cms.patch(
        "other",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": {"app": "x"}}})),
    )
    .await
    .unwrap();
    assert!(
        matches!(next_event(&mut w).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("other"))
    );
}

#[tokio::test]
async fn bookmarks_and_too_old_resource_version() {
    let server = ApiServer::builder()
        .bookmark_interval(Duration::from_millis(50))
        .serve()
        .await
        .unwrap();
    let client = server.client().await.unwrap();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let mut w = cms
        .watch(&WatchParams::default().labels("none=1"), "0")
        .await
        .unwrap()
        .boxed();
    assert!(matches!(next_raw(&mut w).await, WatchEvent::Bookmark(_)));

    cms.create(&PostParams::default(), &cm("old", json!({})))
        .await
        .unwrap();
    let rv = cms
        .get("old")
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    cms.create(&PostParams::default(), &cm("newer", json!({})))
        .await
        .unwrap();
    server.hooks().compact();
    let mut w = cms
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();
    match next_event(&mut w).await {
        WatchEvent::Error(e) => {
            assert_eq!(e.code, 410);
            assert_eq!(e.reason, "Expired");
        }
        other => panic!("expected 410, got {other:?}"),
    }
}

#[tokio::test]
async fn streaming_list_initial_events_end_bookmark() {
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("pre", json!({"t": "pre"})))
        .await
        .unwrap();
    let wp = WatchParams {
        send_initial_events: true,
        label_selector: Some("t=pre".into()),
        ..Default::default()
    };
    let mut w = cms.watch(&wp, "").await.unwrap().boxed();
    assert!(
        matches!(next_event(&mut w).await, WatchEvent::Added(o) if o.metadata.name.as_deref() == Some("pre"))
    );
    match next_event(&mut w).await {
        WatchEvent::Bookmark(b) => assert_eq!(
            b.metadata
                .annotations
                .get("k8s.io/initial-events-end")
                .map(String::as_str),
            Some("true")
        ),
        other => panic!("expected bookmark, got {other:?}"),
    }
    // kube-runtime's streaming-list watcher
    let mut stream = watcher(
        cms.clone(),
        watcher::Config::default().labels("t=pre").streaming_lists(),
    )
    .applied_objects()
    .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("pre"));
}

#[tokio::test]
async fn watcher_resumes_after_dropped_watches_without_losing_events() {
    let (server, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let w = watcher(cms.clone(), watcher::Config::default());
    let task = tokio::spawn(async move {
        let mut s = w.boxed();
        while let Some(ev) = s.next().await {
            if let Ok(ev) = ev {
                let _ = tx.send(ev);
            }
        }
    });
    let mut log: Vec<String> = vec![];
    let wait_for =
        async |want: &str,
               rx: &mut tokio::sync::mpsc::UnboundedReceiver<watcher::Event<ConfigMap>>,
               log: &mut Vec<String>| {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
            while !log.iter().any(|l| l == want) {
                let ev = tokio::time::timeout_at(deadline, rx.recv())
                    .await
                    .unwrap_or_else(|_| panic!("timed out waiting for {want}; saw {log:?}"))
                    .unwrap();
                match ev {
                    watcher::Event::Apply(o) => log.push(format!(
                        "apply {} {}",
                        o.metadata.name.unwrap(),
                        o.data.map(|d| d.len()).unwrap_or(0)
                    )),
                    watcher::Event::Delete(o) => {
                        log.push(format!("delete {}", o.metadata.name.unwrap()))
                    }
                    watcher::Event::InitApply(o) => {
                        log.push(format!("init {}", o.metadata.name.unwrap()))
                    }
                    watcher::Event::InitDone => log.push("init-done".into()),
                    watcher::Event::Init => {}
                }
            }
        };
    wait_for("init-done", &mut rx, &mut log).await;
    cms.create(&PostParams::default(), &cm("a", json!({})))
        .await
        .unwrap();
    wait_for("apply a 0", &mut rx, &mut log).await;
    for round in 0..3 {
        server.hooks().drop_watches();
        cms.patch(
            "a",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {format!("k{round}"): "v"}})),
        )
        .await
        .unwrap();
        wait_for(&format!("apply a {}", round + 1), &mut rx, &mut log).await;
    }
    server.hooks().drop_watches();
    cms.delete("a", &DeleteParams::default()).await.unwrap();
    wait_for("delete a", &mut rx, &mut log).await;
    let relevant: Vec<&String> = log.iter().filter(|l| l.contains(" a")).collect();
    assert_eq!(
        relevant,
        [
            "apply a 0",
            "apply a 1",
            "apply a 2",
            "apply a 3",
            "delete a"
        ]
    );
    task.abort();
}

mod controller {
    use super::*;
    use kube::runtime::controller::{Action, Controller};
    use kube::runtime::finalizer::{Event as Finalizer, finalizer};
    use kube::{CustomResource, CustomResourceExt, ResourceExt};
    use schemars::JsonSchema;
    use serde::{Deserialize, Serialize};
    use std::sync::{Arc, Mutex};

    #[derive(CustomResource, Deserialize, Serialize, Clone, Debug, JsonSchema)]
    #[kube(
        group = "test.example.com",
        version = "v1",
        kind = "Gadget",
        namespaced,
        status = "GadgetStatus"
    )]
    pub struct GadgetSpec {
        pub size: i32,
    }

    #[derive(Deserialize, Serialize, Clone, Debug, Default, JsonSchema)]
    pub struct GadgetStatus {
        pub conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    }

    struct Ctx {
        api: Api<Gadget>,
        cleaned: Mutex<Vec<String>>,
    }

    async fn reconcile(
        g: Arc<Gadget>,
        ctx: Arc<Ctx>,
    ) -> Result<Action, kube::runtime::finalizer::Error<kube::Error>> {
        let api = ctx.api.clone();
        finalizer(&api, "test.example.com/cleanup", g, |ev| async {
            match ev {
                Finalizer::Apply(g) => {
                    let cond = json!({"type": "Ready", "status": "True", "reason": "Reconciled", "message": "ok",
                        "lastTransitionTime": "2025-01-01T00:00:00Z", "observedGeneration": g.metadata.generation});
                    ctx.api
                        .patch_status(&g.name_any(), &PatchParams::apply("gadget-controller").force(),
                            &Patch::Apply(json!({"apiVersion": "test.example.com/v1", "kind": "Gadget", "status": {"conditions": [cond]}})))
                        .await?;
                    Ok(Action::await_change())
                }
                Finalizer::Cleanup(g) => {
                    ctx.cleaned.lock().unwrap().push(g.name_any());
                    Ok(Action::await_change())
                }
            }
        })
        .await
    }

    #[tokio::test]
    async fn controller_converges_fifty_objects_and_cleans_them_up() {
        let (server, client) = setup().await;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &Gadget::crd())
            .await
            .unwrap();
        let api: Api<Gadget> = Api::namespaced(client.clone(), "default");
        let ctx = Arc::new(Ctx {
            api: api.clone(),
            cleaned: Mutex::new(vec![]),
        });
        let ctrl = tokio::spawn(
            Controller::new(
                Api::<Gadget>::all(client.clone()),
                watcher::Config::default(),
            )
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_millis(50)),
                ctx.clone(),
            )
            .for_each(|_| async {}),
        );
        // the first status patch fails; the controller retries
        server.hooks().inject(
            kube_test::Injection::error(500)
                .verb("patch")
                .resource("gadgets/status")
                .times(1),
        );
        for i in 0..50 {
            api.create(
                &PostParams::default(),
                &Gadget::new(&format!("g{i}"), GadgetSpec { size: i }),
            )
            .await
            .unwrap();
        }
        eventually("all ready", || async {
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|g| g.status.as_ref().is_some_and(|s| !s.conditions.is_empty()))
                .count()
                == 50
        })
        .await;
        api.delete_collection(&DeleteParams::default(), &ListParams::default())
            .await
            .unwrap();
        eventually("all gone", || async {
            api.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        })
        .await;
        assert_eq!(ctx.cleaned.lock().unwrap().len(), 50);
        ctrl.abort();
    }

    #[tokio::test]
    async fn controller_with_finalizer_converges_and_cleans_up() {
        let (_s, client) = setup().await;
        let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> = Api::all(client.clone());
        crds.create(&PostParams::default(), &Gadget::crd())
            .await
            .unwrap();
        let api: Api<Gadget> = Api::namespaced(client.clone(), "default");
        let ctx = Arc::new(Ctx {
            api: api.clone(),
            cleaned: Mutex::new(vec![]),
        });
        let ctrl = tokio::spawn(
            Controller::new(
                Api::<Gadget>::all(client.clone()),
                watcher::Config::default(),
            )
            .run(
                reconcile,
                |_, _, _| Action::requeue(Duration::from_millis(50)),
                ctx.clone(),
            )
            .for_each(|_| async {}),
        );
        api.create(
            &PostParams::default(),
            &Gadget::new("g1", GadgetSpec { size: 1 }),
        )
        .await
        .unwrap();
        eventually("ready with finalizer", || async {
            let g = api.get("g1").await.unwrap();
            let ready = g.status.as_ref().is_some_and(|s| {
                s.conditions.iter().any(|c| {
                    c.type_ == "Ready" && c.status == "True" && c.observed_generation == Some(1)
                })
            });
            ready
                && g.finalizers()
                    .contains(&"test.example.com/cleanup".to_string())
        })
        .await;
        api.delete("g1", &DeleteParams::default()).await.unwrap();
        eventually("deleted after cleanup", || async {
            api.get_opt("g1").await.unwrap().is_none()
        })
        .await;
        assert_eq!(*ctx.cleaned.lock().unwrap(), ["g1"]);
        ctrl.abort();
    }
}

#[tokio::test]
async fn recorder_events_are_visible_through_both_event_apis() {
    use k8s_openapi::api::core::v1::Event as CoreEvent;
    use k8s_openapi::api::events::v1::Event as NewEvent;
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cm = cms
        .create(&PostParams::default(), &cm("subject", json!({})))
        .await
        .unwrap();
    let core: Api<CoreEvent> = Api::namespaced(client.clone(), "default");
    let rv = core
        .list(&ListParams::default())
        .await
        .unwrap()
        .metadata
        .resource_version
        .unwrap();
    let mut w = core
        .watch(&WatchParams::default(), &rv)
        .await
        .unwrap()
        .boxed();

    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "landlord".into(),
            instance: Some("pod-1".into()),
        },
    );
    let oref = kube::Resource::object_ref(&cm, &());
    let ev = Event {
        type_: EventType::Normal,
        reason: "Synced".into(),
        note: Some("all good".into()),
        action: "Reconcile".into(),
        secondary: None,
    };
    recorder.publish(&ev, &oref).await.unwrap();
    recorder.publish(&ev, &oref).await.unwrap(); // a series: patched, not duplicated

    let new: Api<NewEvent> = Api::namespaced(client.clone(), "default");
    let list = new.list(&ListParams::default()).await.unwrap();
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].note.as_deref(), Some("all good"));
    assert_eq!(
        list.items[0].reporting_controller.as_deref(),
        Some("landlord")
    );

    let old = core
        .list(&ListParams::default().fields("involvedObject.name=subject"))
        .await
        .unwrap();
    assert_eq!(old.items.len(), 1);
    let e = &old.items[0];
    assert_eq!(e.message.as_deref(), Some("all good"));
    assert_eq!(e.reason.as_deref(), Some("Synced"));
    assert_eq!(e.involved_object.name.as_deref(), Some("subject"));
    assert_eq!(e.reporting_component.as_deref(), Some("landlord"));
    assert!(
        matches!(next_core(&mut w).await, WatchEvent::Added(e) if e.message.as_deref() == Some("all good"))
    );
}

async fn next_core<S>(s: &mut S) -> WatchEvent<k8s_openapi::api::core::v1::Event>
where
    S: futures::Stream<Item = kube::Result<WatchEvent<k8s_openapi::api::core::v1::Event>>> + Unpin,
{
    loop {
        match tokio::time::timeout(Duration::from_secs(5), s.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap()
        {
            WatchEvent::Bookmark(_) => continue,
            other => return other,
        }
    }
}

#[tokio::test]
async fn metadata_only_get_list_and_watch() {
    use kube::core::PartialObjectMeta;
    let (_s, client) = setup().await;
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    cms.create(&PostParams::default(), &cm("meta", json!({"m": "1"})))
        .await
        .unwrap();
    let m = cms.get_metadata("meta").await.unwrap();
    assert_eq!(m.metadata.labels.unwrap()["m"], "1");
    let list = cms
        .list_metadata(&ListParams::default().labels("m=1"))
        .await
        .unwrap();
    assert_eq!(list.items.len(), 1);
    let mut s = watcher(
        Api::<PartialObjectMeta<ConfigMap>>::namespaced(client.clone(), "default"),
        watcher::Config::default().labels("m=1"),
    )
    .applied_objects()
    .boxed();
    let first = tokio::time::timeout(Duration::from_secs(5), s.try_next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(first.metadata.name.as_deref(), Some("meta"));
}
