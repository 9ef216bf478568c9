//! `wfm resources put|get|delete`.

use serde_json::json;
use wfm_client::{types, Client};

use crate::args::{PutResourceArgs, ResourceKey};
use crate::input::{answer, body};
use crate::output::Out;

/// `resources put NAMESPACE NAME URI`: prints the stored resource.
pub async fn put(client: &Client, out: &Out, args: PutResourceArgs) -> anyhow::Result<u8> {
    let resource: types::NewStateResource =
        body(json!({"namespace": args.namespace, "name": args.name, "uri": args.uri}))?;
    let saved = answer(
        client
            .put_state_resource()
            .namespace(&args.namespace)
            .name(&args.name)
            .body(resource.clone())
            .send()
            .await,
    )?;
    out.json(&serde_json::to_value(&saved)?);
    out.message(&format!("saved {}/{}", args.namespace, args.name));
    Ok(0)
}

/// `resources get NAMESPACE NAME`.
pub async fn get(client: &Client, out: &Out, args: ResourceKey) -> anyhow::Result<u8> {
    let resource = answer(
        client
            .get_state_resource()
            .namespace(&args.namespace)
            .name(&args.name)
            .send()
            .await,
    )?;
    out.json(&serde_json::to_value(&resource)?);
    Ok(0)
}

/// `resources delete NAMESPACE NAME`.
pub async fn delete(client: &Client, out: &Out, args: ResourceKey) -> anyhow::Result<u8> {
    answer(
        client
            .delete_state_resource()
            .namespace(&args.namespace)
            .name(&args.name)
            .send()
            .await,
    )?;
    out.message(&format!("deleted {}/{}", args.namespace, args.name));
    Ok(0)
}
