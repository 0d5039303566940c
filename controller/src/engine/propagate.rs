//! Implicit param propagation (as in Tekton): a run's params reach the
//! spec embedded in it (`taskSpec`, `pipelineSpec`) without the spec
//! declaring them. A spec referenced by name gets only what it declares.

use crate::api::{Param, ParamSpec};

/// The declarations of an embedded spec, plus one for every param the run
/// gives that the spec does not declare: of the type of its value, with no
/// default. A declared param keeps its declaration; the run's value then
/// wins over its default as for any declared param.
pub fn with_propagated(declared: &[ParamSpec], given: &[Param]) -> Vec<ParamSpec> {
    let mut all = declared.to_vec();
    for param in given {
        if !all.iter().any(|p| p.name == param.name) {
            all.push(ParamSpec {
                name: param.name.clone(),
                param_type: param.value.param_type(),
                ..ParamSpec::default()
            });
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{ParamType, ParamValue};

    fn given(name: &str, value: ParamValue) -> Param {
        Param {
            name: name.into(),
            value,
        }
    }

    #[test]
    fn undeclared_params_are_declared_with_their_value_type() {
        let declared = vec![ParamSpec {
            name: "kept".into(),
            default: Some(ParamValue::String("d".into())),
            ..ParamSpec::default()
        }];
        let all = with_propagated(
            &declared,
            &[
                given("kept", ParamValue::String("x".into())),
                given("list", ParamValue::Array(vec!["a".into()])),
            ],
        );
        assert_eq!(all.len(), 2);
        assert_eq!(all[0], declared[0], "a declared param keeps its declaration");
        assert_eq!(all[1].name, "list");
        assert_eq!(all[1].param_type, ParamType::Array);
        assert_eq!(all[1].default, None);
    }
}
