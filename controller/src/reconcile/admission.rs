//! Concurrency groups, decided: which run of a group may start, which
//! waits (and where it stands in the queue), which is replaced. Pure: the
//! controller lists the group's runs and carries the answer out
//! (`controller/admission.rs`).
//!
//! The queue is not kept anywhere but in the runs themselves: a run's
//! group is a label (a hash) and an annotation (the full text) on it, a
//! run that holds a slot has a start time, and the order is creation time,
//! then name. So a restarted controller finds the same queue.

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use sha2::{Digest, Sha256};

use crate::api::{Concurrency, ConcurrencyPolicy, Param, ParamSpec, ParamValue};
use crate::engine::errors::ValidationErrors;
use crate::engine::refs::scan;
use crate::engine::validate::declared_default;

/// The label that selects a group's runs: a hash of the group, since a
/// group is free text and label values are limited to 63 characters.
pub const LABEL_GROUP: &str = "cicdoperator.ning1875.io/concurrency-group";
/// The annotation that holds the group's full text (for people, and to
/// tell apart two groups whose hashes collide).
pub const ANNOTATION_GROUP: &str = "cicdoperator.ning1875.io/concurrency-group";
/// Marks a MyTaskRun that had to wait for the namespace's cap on running
/// pods (`--max-running-pods-per-namespace`), so the waiting runs can be
/// listed in order.
pub const LABEL_NAMESPACE_QUEUE: &str = "cicdoperator.ning1875.io/namespace-queue";
/// Set on a run that a newer run of its group replaced: the message its
/// cancellation ends with, naming the newer run.
pub const ANNOTATION_CANCELLED_BY: &str = "cicdoperator.ning1875.io/cancelled-by";
/// Longest group after substitution: an annotation value could be longer,
/// but a group is a name people read in messages.
pub const MAX_GROUP_BYTES: usize = 253;
/// Most runs of a group that may run at once.
pub const MAX_RUNNING: u32 = 1000;
/// A run of a group starts at the earliest this long after it was created:
/// creation times have whole seconds, and runs created in the same instant
/// must all be seen (labelled) before the first one is let through, or a
/// later one could overtake an earlier one.
pub const SETTLE: Duration = Duration::from_secs(2);

/// A run's concurrency group, resolved against its params.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// The group's text after substitution, e.g. `deploy-prod`.
    pub name: String,
    /// Runs of the group that may run at once.
    pub max: u32,
    /// What a run does when the group is full.
    pub policy: ConcurrencyPolicy,
}

impl Group {
    /// The label value that selects the group's runs.
    pub fn label(&self) -> String {
        group_label(&self.name)
    }
}

/// The label value for a group: 20 hex digits of its SHA-256.
pub fn group_label(group: &str) -> String {
    let digest = Sha256::digest(group.as_bytes());
    let hex: String = digest.iter().take(10).map(|byte| format!("{byte:02x}")).collect();
    format!("g{hex}")
}

/// The concurrency that applies: the run's own, else its definition's.
pub fn effective<'a>(run: Option<&'a Concurrency>, definition: Option<&'a Concurrency>) -> Option<&'a Concurrency> {
    run.or(definition)
}

/// The value of each param the run has: what it gives, else the declared
/// default. Params it gives that are not declared count too (an inline
/// spec receives them).
fn param_values<'a>(declared: &'a [ParamSpec], given: &'a [Param]) -> Vec<(&'a str, ParamValue)> {
    let mut values: Vec<(&str, ParamValue)> = given.iter().map(|p| (p.name.as_str(), p.value.clone())).collect();
    for spec in declared {
        if !values.iter().any(|(name, _)| *name == spec.name)
            && let Some(default) = declared_default(spec)
        {
            values.push((spec.name.as_str(), default));
        }
    }
    values
}

/// Resolves `concurrency` for a run with `given` params of a definition
/// declaring `declared`. `field` names where it was written (e.g.
/// `spec.concurrency` or `MyTask "deploy": spec.concurrency`). Only
/// `$(params.NAME)` of string params may appear in the group; the result is
/// bounded (built no longer than [`MAX_GROUP_BYTES`]) and printable.
pub fn resolve_group(
    concurrency: &Concurrency,
    declared: &[ParamSpec],
    given: &[Param],
    field: &str,
) -> Result<Group, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let group_field = format!("{field}.group");
    let values = param_values(declared, given);
    let template = &concurrency.group;
    let mut name = String::new();
    let mut last = 0;
    let mut too_long = false;
    let mut push = |name: &mut String, piece: &str| {
        if name.len() + piece.len() > MAX_GROUP_BYTES {
            too_long = true;
        } else {
            name.push_str(piece);
        }
    };
    for found in scan(template) {
        push(&mut name, &template[last..found.start]);
        last = found.end;
        let Some(param) = found.expr.strip_prefix("params.") else {
            errors.push(
                &group_field,
                format!(
                    "$({}): only $(params.NAME) can be used in a concurrency group",
                    found.expr
                ),
            );
            continue;
        };
        match values.iter().find(|(n, _)| *n == param).map(|(_, v)| v) {
            Some(ParamValue::String(text)) => push(&mut name, text),
            Some(other) => errors.push(
                &group_field,
                format!(
                    "$({}): param {param:?} is an {}; a concurrency group needs a string",
                    found.expr,
                    other.param_type()
                ),
            ),
            None => errors.push(
                &group_field,
                format!(
                    "$({}): the run has no param {param:?} (and no default is declared)",
                    found.expr
                ),
            ),
        }
    }
    push(&mut name, &template[last..]);
    if too_long {
        errors.push(
            &group_field,
            format!("group {template:?} is longer than {MAX_GROUP_BYTES} bytes after substitution"),
        );
    } else if errors.is_empty() && name.trim().is_empty() {
        errors.push(&group_field, format!("group {template:?} is empty after substitution"));
    } else if let Some(bad) = name.chars().find(|c| c.is_control()) {
        errors.push(
            &group_field,
            format!("group {name:?} contains the control character {bad:?}; use printable text"),
        );
    }
    let max = concurrency.max.unwrap_or(1);
    if !(1..=MAX_RUNNING).contains(&max) {
        errors.push(
            format!("{field}.max"),
            format!("max {max} is out of range: between 1 and {MAX_RUNNING} runs of a group may run at once"),
        );
    }
    errors.into_result(Group {
        name,
        max,
        policy: concurrency.policy.unwrap_or_default(),
    })
}

/// Where a run of the group stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    /// Not started yet: it waits for a slot (or has not been judged yet).
    Waiting,
    /// Holds a slot: it started and has not finished.
    Active,
    /// Finished, or cancelled before it started: it holds nothing.
    Finished,
}

/// One run of the group, as the controller read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// `metadata.creationTimestamp`: the queue's order (then the name).
    pub created: Timestamp,
    pub state: MemberState,
}

/// What the run being decided does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Go on: start (or keep running).
    Start,
    /// Wait with `Succeeded=Unknown`, reason `Queued` and this message;
    /// look again after `recheck` if set (else when the group changes).
    Wait { message: String, recheck: Option<Duration> },
    /// A newer run replaces this one: cancel it with this message.
    Cancel { replaced_by: String, message: String },
}

/// `1st`, `2nd`, `3rd`, `4th`, ... `11th`, `12th`, `13th`, `21st`.
pub fn ordinal(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

fn order_key(member: &Member) -> (i64, &str) {
    (member.created.as_millisecond(), member.name.as_str())
}

/// Decides for `me` given the group's runs (`members` may or may not
/// include `me` itself; a copy under its name is replaced by `me`).
pub fn decide_admission(me: &Member, group: &Group, members: &[Member], now: Timestamp) -> Admission {
    let mut live: Vec<&Member> = members
        .iter()
        .filter(|m| m.name != me.name && m.state != MemberState::Finished)
        .chain(std::iter::once(me))
        .collect();
    live.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let position = live.iter().position(|m| m.name == me.name).unwrap_or(0);
    let max = group.max.max(1) as usize;
    if group.policy == ConcurrencyPolicy::CancelInProgress && live.len() - position > max {
        let newest = live.last().map(|m| m.name.clone()).unwrap_or_default();
        let message = format!(
            "cancelled: replaced by the newer run {newest:?} of concurrency group {:?} (policy CancelInProgress, max {max})",
            group.name
        );
        return Admission::Cancel {
            replaced_by: newest,
            message,
        };
    }
    if me.state == MemberState::Active {
        return Admission::Start;
    }
    let active: Vec<&Member> = live
        .iter()
        .copied()
        .filter(|m| m.state == MemberState::Active)
        .collect();
    let waiting: Vec<&Member> = live
        .iter()
        .copied()
        .filter(|m| m.state != MemberState::Active)
        .collect();
    let place = waiting.iter().position(|m| m.name == me.name).unwrap_or(0);
    let free = max.saturating_sub(active.len());
    let settles_at = me.created.as_millisecond() + SETTLE.as_millis() as i64;
    let settle_left = settles_at - now.as_millisecond();
    if place < free && settle_left <= 0 {
        return Admission::Start;
    }
    let behind = if place > 0 {
        format!(", behind run {:?}", waiting[place - 1].name)
    } else if let Some(oldest) = active.first() {
        format!(", behind running run {:?}", oldest.name)
    } else {
        String::new()
    };
    let message = format!(
        "waiting in concurrency group {:?}: {} of {}{behind} ({} of at most {max} running)",
        group.name,
        ordinal(place + 1),
        waiting.len(),
        active.len()
    );
    let recheck = (place < free).then(|| Duration::from_millis(settle_left.max(1) as u64));
    Admission::Wait { message, recheck }
}

/// Decides for `me` under the namespace's cap of `cap` running pods, with
/// `running` pods running now and the runs `waiting` for the cap (in any
/// order; `me` may be among them). The oldest waiting runs go first.
pub fn decide_namespace_slot(me: &Member, waiting: &[Member], running: usize, cap: u32, namespace: &str) -> Admission {
    let mut queue: Vec<&Member> = waiting
        .iter()
        .filter(|m| m.name != me.name && m.state == MemberState::Waiting)
        .chain(std::iter::once(me))
        .collect();
    queue.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
    let place = queue.iter().position(|m| m.name == me.name).unwrap_or(0);
    let free = (cap as usize).saturating_sub(running);
    if place < free {
        return Admission::Start;
    }
    let behind = match place {
        0 => String::new(),
        _ => format!(", behind run {:?}", queue[place - 1].name),
    };
    Admission::Wait {
        message: format!(
            "waiting for a pod slot in namespace {namespace:?}: {} of {}{behind} ({running} of at most {cap} pods running, controller flag --max-running-pods-per-namespace)",
            ordinal(place + 1),
            queue.len()
        ),
        recheck: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).expect("valid")
    }

    fn member(name: &str, created: i64, state: MemberState) -> Member {
        Member {
            name: name.into(),
            created: at(created),
            state,
        }
    }

    fn group(max: u32, policy: ConcurrencyPolicy) -> Group {
        Group {
            name: "deploy-prod".into(),
            max,
            policy,
        }
    }

    fn concurrency(text: &str) -> Concurrency {
        Concurrency {
            group: text.into(),
            max: None,
            policy: None,
        }
    }

    fn param(name: &str, value: &str) -> Param {
        Param {
            name: name.into(),
            value: ParamValue::String(value.into()),
        }
    }

    #[test]
    fn the_group_is_substituted_with_params_and_defaults() {
        let declared = vec![ParamSpec {
            name: "region".into(),
            default: Some(ParamValue::String("eu".into())),
            ..Default::default()
        }];
        let given = [param("env", "prod")];
        let resolved = resolve_group(
            &concurrency("deploy-$(params.env)-$(params.region)"),
            &declared,
            &given,
            "spec.concurrency",
        )
        .expect("resolves");
        assert_eq!(resolved.name, "deploy-prod-eu");
        assert_eq!((resolved.max, resolved.policy), (1, ConcurrencyPolicy::Queue));
        assert_eq!(resolved.label(), group_label("deploy-prod-eu"));
        assert!(resolved.label().len() <= 63);
        assert_ne!(group_label("a"), group_label("b"));
    }

    #[test]
    fn bad_groups_are_refused_naming_field_and_value() {
        let given = [param("big", &"x".repeat(300)), param("nl", "a\nb")];
        let error = |text: &str, max: Option<u32>| {
            let c = Concurrency {
                group: text.into(),
                max,
                policy: None,
            };
            resolve_group(&c, &[], &given, "spec.concurrency")
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            error("d-$(params.nope)", None),
            "spec.concurrency.group: $(params.nope): the run has no param \"nope\" (and no default is declared)"
        );
        assert!(
            error("$(params.big)", None).contains("longer than 253 bytes"),
            "{}",
            error("$(params.big)", None)
        );
        assert!(error("$(params.nl)", None).contains("control character"));
        assert_eq!(
            error("", None),
            "spec.concurrency.group: group \"\" is empty after substitution"
        );
        assert!(error("$(context.taskRun.name)", None).contains("only $(params.NAME)"));
        assert_eq!(
            error("g", Some(0)),
            "spec.concurrency.max: max 0 is out of range: between 1 and 1000 runs of a group may run at once"
        );
    }

    #[test]
    fn an_amplified_group_is_never_built() {
        let given = [param("x", &"y".repeat(1000))];
        let template = "$(params.x)".repeat(10_000);
        let error = resolve_group(&concurrency(&template), &[], &given, "spec.concurrency").expect_err("refused");
        assert!(error.to_string().contains("longer than 253 bytes"));
    }

    #[test]
    fn queue_position_follows_creation_time_then_name() {
        let members = vec![
            member("a", 0, MemberState::Active),
            member("c", 5, MemberState::Waiting),
            member("b", 5, MemberState::Waiting),
            member("d", 9, MemberState::Waiting),
            member("old", -5, MemberState::Finished),
        ];
        let me = member("c", 5, MemberState::Waiting);
        let decided = decide_admission(&me, &group(1, ConcurrencyPolicy::Queue), &members, at(60));
        assert_eq!(
            decided,
            Admission::Wait {
                message:
                    "waiting in concurrency group \"deploy-prod\": 2nd of 3, behind run \"b\" (1 of at most 1 running)"
                        .into(),
                recheck: None
            }
        );
        let first = member("b", 5, MemberState::Waiting);
        let decided = decide_admission(&first, &group(1, ConcurrencyPolicy::Queue), &members, at(60));
        assert!(
            matches!(&decided, Admission::Wait { message, .. } if message.contains("1st of 3, behind running run \"a\"")),
            "{decided:?}"
        );
        assert_eq!(
            decide_admission(&first, &group(2, ConcurrencyPolicy::Queue), &members, at(60)),
            Admission::Start,
            "a second slot is free"
        );
    }

    #[test]
    fn a_finished_run_frees_its_slot_for_the_oldest_waiting_run() {
        let members = vec![
            member("a", 0, MemberState::Finished),
            member("b", 1, MemberState::Waiting),
            member("c", 2, MemberState::Waiting),
        ];
        let g = group(1, ConcurrencyPolicy::Queue);
        assert_eq!(decide_admission(&members[1], &g, &members, at(60)), Admission::Start);
        assert!(matches!(
            decide_admission(&members[2], &g, &members, at(60)),
            Admission::Wait { .. }
        ));
    }

    #[test]
    fn a_new_run_waits_to_settle_before_it_starts() {
        let me = member("a", 10, MemberState::Waiting);
        let g = group(1, ConcurrencyPolicy::Queue);
        let decided = decide_admission(&me, &g, &[], at(11));
        assert_eq!(
            decided,
            Admission::Wait {
                message: "waiting in concurrency group \"deploy-prod\": 1st of 1 (0 of at most 1 running)".into(),
                recheck: Some(Duration::from_secs(1)),
            }
        );
        assert_eq!(decide_admission(&me, &g, &[], at(12)), Admission::Start);
    }

    #[test]
    fn a_running_run_keeps_its_slot() {
        let members = vec![member("a", 0, MemberState::Active), member("b", 1, MemberState::Active)];
        let g = group(1, ConcurrencyPolicy::Queue);
        assert_eq!(decide_admission(&members[1], &g, &members, at(60)), Admission::Start);
    }

    #[test]
    fn cancel_in_progress_replaces_every_older_run_by_the_newest() {
        let members = vec![
            member("a", 0, MemberState::Active),
            member("b", 1, MemberState::Waiting),
            member("c", 2, MemberState::Waiting),
        ];
        let g = group(1, ConcurrencyPolicy::CancelInProgress);
        for older in &members[..2] {
            match decide_admission(older, &g, &members, at(60)) {
                Admission::Cancel { replaced_by, message } => {
                    assert_eq!(replaced_by, "c");
                    assert!(message.contains("replaced by the newer run \"c\""), "{message}");
                }
                other => panic!("{} must be cancelled: {other:?}", older.name),
            }
        }
        // The newest waits until the run it replaced has stopped.
        assert!(matches!(
            decide_admission(&members[2], &g, &members, at(60)),
            Admission::Wait { .. }
        ));
        let after = vec![
            member("a", 0, MemberState::Finished),
            member("b", 1, MemberState::Finished),
            members[2].clone(),
        ];
        assert_eq!(decide_admission(&after[2], &g, &after, at(60)), Admission::Start);
        // With max 2 the two newest stay.
        let g2 = group(2, ConcurrencyPolicy::CancelInProgress);
        assert!(matches!(
            decide_admission(&members[0], &g2, &members, at(60)),
            Admission::Cancel { .. }
        ));
        assert!(!matches!(
            decide_admission(&members[1], &g2, &members, at(60)),
            Admission::Cancel { .. }
        ));
    }

    #[test]
    fn the_namespace_cap_lets_the_oldest_waiting_runs_through() {
        let waiting = vec![
            member("b", 2, MemberState::Waiting),
            member("a", 1, MemberState::Waiting),
            member("gone", 0, MemberState::Finished),
        ];
        let me = member("c", 3, MemberState::Waiting);
        assert_eq!(
            decide_namespace_slot(&me, &waiting, 2, 3, "ci"),
            Admission::Wait {
                message: "waiting for a pod slot in namespace \"ci\": 3rd of 3, behind run \"b\" (2 of at most 3 pods running, controller flag --max-running-pods-per-namespace)".into(),
                recheck: None
            }
        );
        assert_eq!(
            decide_namespace_slot(&waiting[1], &waiting, 2, 3, "ci"),
            Admission::Start
        );
        assert!(matches!(
            decide_namespace_slot(&waiting[0], &waiting, 2, 3, "ci"),
            Admission::Wait { .. }
        ));
        assert_eq!(
            decide_namespace_slot(&me, &[], 2, 3, "ci"),
            Admission::Start,
            "nobody waits"
        );
        assert!(matches!(
            decide_namespace_slot(&me, &[], 3, 3, "ci"),
            Admission::Wait { .. }
        ));
    }

    #[test]
    fn ordinals_read_as_english() {
        let all: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 102, 111].map(ordinal).to_vec();
        assert_eq!(
            all,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "102nd", "111th"
            ]
        );
    }
}
