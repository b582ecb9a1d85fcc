//! The registry holds exactly what the manifests promise for the enabled features.

use std::collections::BTreeSet;

use autocandle::catalog::{is_feature_enabled, model_types};
use autocandle::registry::Registry;

#[test]
fn registry_matches_the_manifests_for_enabled_features() {
    let registry = Registry::global().unwrap();
    // A key registered twice fails only its own lookups; here no key may.
    let problems: Vec<String> = registry.problems().iter().map(ToString::to_string).collect();
    assert!(problems.is_empty(), "broken registrations: {problems:#?}");
    let mut promised = BTreeSet::new();
    for info in model_types() {
        let Some(feature) = info.feature else { continue };
        if !is_feature_enabled(feature) {
            continue;
        }
        assert!(registry.config(info.model_type).is_some(), "no config registered for `{}`", info.model_type);
        for tc in info.tasks.iter().filter(|t| t.implemented) {
            promised.insert((info.model_type.to_owned(), tc.task, tc.class_name.to_owned()));
        }
    }
    let registered: BTreeSet<_> =
        registry.models().map(|r| (r.model_type.to_owned(), r.task, r.class_name.to_owned())).collect();
    assert!(!promised.is_empty(), "the `all` feature enables no architecture");
    assert_eq!(promised, registered, "manifests (left) and registrations (right) differ");
}

#[test]
fn every_registered_config_is_in_the_catalog() {
    let registry = Registry::global().unwrap();
    for model_type in registry.model_types() {
        let info = autocandle::catalog::model_type_info(model_type);
        assert!(info.is_some(), "`{model_type}` is registered but has no manifest");
    }
}
