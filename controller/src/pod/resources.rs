//! Pod resource requests for steps that run one at a time.
//!
//! Kubernetes sums the requests of a pod's containers, but our steps never
//! run together, so the sum over-reserves the node. The pod should request
//! what its largest step needs: per resource, the step with the largest
//! request keeps it and every other step requests zero of it.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// Parses a Kubernetes quantity (`100m`, `1.5Gi`, `2e3`, `512Mi`) into a
/// number of base units, for comparison only.
pub fn quantity_value(quantity: &str) -> Option<f64> {
    let text = quantity.trim();
    const SUFFIXES: &[(&str, f64)] = &[
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", 1024.0 * 1024.0 * 1024.0),
        ("Ti", 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Pi", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("Ei", 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0 * 1024.0),
        ("n", 1e-9),
        ("u", 1e-6),
        ("m", 1e-3),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
        ("E", 1e18),
    ];
    for (suffix, factor) in SUFFIXES {
        if let Some(number) = text.strip_suffix(suffix) {
            return number.parse::<f64>().ok().map(|n| n * factor);
        }
    }
    text.parse::<f64>().ok()
}

/// What a container effectively requests of `resource`: its request, or
/// its limit (Kubernetes copies a lone limit into the request).
fn effective_request(resources: Option<&ResourceRequirements>, resource: &str) -> Option<Quantity> {
    let resources = resources?;
    resources
        .requests
        .as_ref()
        .and_then(|r| r.get(resource))
        .or_else(|| resources.limits.as_ref().and_then(|l| l.get(resource)))
        .cloned()
}

/// Rewrites the steps' requests so their sum equals the largest step's
/// request, per resource. Limits are left as they are.
pub fn requests_of_largest_step(steps: &mut [Option<ResourceRequirements>]) {
    let names: BTreeSet<String> = steps
        .iter()
        .flatten()
        .flat_map(|r| r.requests.iter().chain(r.limits.iter()).flat_map(|m| m.keys().cloned()))
        .collect();
    for resource in names {
        let largest = steps
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let quantity = effective_request(r.as_ref(), &resource)?;
                Some((i, quantity_value(&quantity.0).unwrap_or(0.0), quantity))
            })
            .fold(None::<(usize, f64, Quantity)>, |best, candidate| match best {
                Some(best) if best.1 >= candidate.1 => Some(best),
                _ => Some(candidate),
            });
        let Some((largest_index, _, largest_quantity)) = largest else {
            continue;
        };
        for (index, step) in steps.iter_mut().enumerate() {
            let keeps = index == largest_index;
            let has_it = effective_request(step.as_ref(), &resource).is_some();
            if !keeps && !has_it {
                continue;
            }
            let requests = step
                .get_or_insert_with(Default::default)
                .requests
                .get_or_insert_with(BTreeMap::new);
            let value = if keeps {
                largest_quantity.clone()
            } else {
                Quantity("0".into())
            };
            requests.insert(resource.clone(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(requests: &[(&str, &str)], limits: &[(&str, &str)]) -> Option<ResourceRequirements> {
        let map = |pairs: &[(&str, &str)]| {
            (!pairs.is_empty()).then(|| {
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), Quantity(v.to_string())))
                    .collect()
            })
        };
        Some(ResourceRequirements {
            requests: map(requests),
            limits: map(limits),
            ..Default::default()
        })
    }

    fn request(r: &Option<ResourceRequirements>, name: &str) -> Option<String> {
        r.as_ref()?.requests.as_ref()?.get(name).map(|q| q.0.clone())
    }

    #[test]
    fn parses_quantities() {
        assert_eq!(quantity_value("100m"), Some(0.1));
        assert_eq!(quantity_value("1Gi"), Some(1073741824.0));
        assert_eq!(quantity_value("2e3"), Some(2000.0));
        assert_eq!(quantity_value("1.5"), Some(1.5));
        assert_eq!(quantity_value("lots"), None);
    }

    #[test]
    fn only_the_largest_step_keeps_each_request() {
        let mut steps = vec![
            res(&[("cpu", "500m"), ("memory", "64Mi")], &[]),
            res(&[("cpu", "2")], &[("memory", "1Gi")]),
            None,
        ];
        requests_of_largest_step(&mut steps);
        assert_eq!(request(&steps[0], "cpu").as_deref(), Some("0"));
        assert_eq!(request(&steps[1], "cpu").as_deref(), Some("2"));
        // Step 1's memory limit implies a 1Gi request, larger than step 0's.
        assert_eq!(request(&steps[0], "memory").as_deref(), Some("0"));
        assert_eq!(request(&steps[1], "memory").as_deref(), Some("1Gi"));
        assert_eq!(steps[2], None);
        let limit = steps[1]
            .as_ref()
            .and_then(|r| r.limits.as_ref())
            .and_then(|l| l.get("memory"));
        assert_eq!(limit.map(|q| q.0.as_str()), Some("1Gi"));
    }
}
