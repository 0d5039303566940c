//! The graph of a pipeline's tasks: edges from `runAfter` and from result
//! references, checked for unknown tasks and cycles.

use std::collections::{BTreeMap, BTreeSet};

use crate::api::PipelineSpec;
use crate::engine::errors::ValidationErrors;
use crate::engine::validate::list_or_none;

use super::refs::{TaskVariable, task_texts, task_variables};

/// How a task depends on a parent. A result reference is the stronger tie:
/// without the parent's results the task cannot run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    RunAfter,
    Results,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dag {
    /// The non-finally tasks, parents before children (declaration order
    /// among independent tasks).
    pub order: Vec<String>,
    /// Task -> its parents and how it depends on each.
    pub parents: BTreeMap<String, BTreeMap<String, Edge>>,
    /// Finally task -> the tasks whose results it reads.
    pub finally_result_parents: BTreeMap<String, BTreeSet<String>>,
}

impl Dag {
    /// The tasks with no parents: they start first.
    pub fn roots(&self) -> Vec<&str> {
        self.order
            .iter()
            .filter(|task| self.parents.get(*task).is_none_or(BTreeMap::is_empty))
            .map(String::as_str)
            .collect()
    }
}

/// Builds the graph of `spec`. `field` prefixes errors (e.g.
/// `spec.pipelineSpec`). Reports unknown tasks in `runAfter` and in
/// references, and a cycle, naming the tasks on it.
pub fn build_dag(spec: &PipelineSpec, field: &str) -> Result<Dag, ValidationErrors> {
    let mut errors = ValidationErrors::default();
    let regular: BTreeSet<&str> = spec.tasks.iter().map(|t| t.name.as_str()).collect();
    let finally: BTreeSet<&str> = spec.finally.iter().map(|t| t.name.as_str()).collect();
    let known = |names: &BTreeSet<&str>| list_or_none(&names.iter().copied().collect::<Vec<_>>());
    let unknown_task = |name: &str| {
        if finally.contains(name) {
            format!("{name:?} is a finally task; tasks cannot depend on finally tasks")
        } else {
            format!("no pipeline task named {name:?} (tasks: {})", known(&regular))
        }
    };

    let mut dag = Dag::default();
    for (index, task) in spec.tasks.iter().enumerate() {
        let at = format!("{field}.tasks[{index}]");
        let mut parents = BTreeMap::new();
        for (after_index, parent) in task.run_after.iter().enumerate() {
            if regular.contains(parent.as_str()) {
                parents.entry(parent.clone()).or_insert(Edge::RunAfter);
            } else {
                errors.push(format!("{at}.runAfter[{after_index}]"), unknown_task(parent));
            }
        }
        for (suffix, text) in task_texts(task) {
            for (expr, variable) in task_variables(text) {
                let where_ = format!("{at}.{suffix}");
                match variable {
                    Err(why) => errors.push(&where_, format!("$({expr}): {why}")),
                    Ok(TaskVariable::Result { task: parent, .. } | TaskVariable::MatrixLength { task: parent, .. })
                        if regular.contains(parent) =>
                    {
                        parents.insert(parent.to_string(), Edge::Results);
                    }
                    Ok(TaskVariable::Result { task: parent, .. } | TaskVariable::MatrixLength { task: parent, .. }) => {
                        errors.push(&where_, format!("$({expr}): {}", unknown_task(parent)))
                    }
                    Ok(TaskVariable::Status { .. } | TaskVariable::Reason { .. } | TaskVariable::AggregateStatus) => {
                        errors.push(
                            &where_,
                            format!("$({expr}): task status and reason are only available to finally tasks"),
                        )
                    }
                }
            }
        }
        dag.parents.insert(task.name.clone(), parents);
    }

    for (index, task) in spec.finally.iter().enumerate() {
        let at = format!("{field}.finally[{index}]");
        if !task.run_after.is_empty() {
            errors.push(
                format!("{at}.runAfter"),
                "finally tasks run in parallel after all tasks; runAfter is not allowed",
            );
        }
        let mut result_parents = BTreeSet::new();
        for (suffix, text) in task_texts(task) {
            for (expr, variable) in task_variables(text) {
                let where_ = format!("{at}.{suffix}");
                let parent = match &variable {
                    Err(why) => {
                        errors.push(&where_, format!("$({expr}): {why}"));
                        continue;
                    }
                    Ok(variable) => variable.task(),
                };
                let Some(parent) = parent else { continue };
                if !regular.contains(parent) {
                    errors.push(&where_, format!("$({expr}): {}", unknown_task(parent)));
                } else if matches!(
                    variable,
                    Ok(TaskVariable::Result { .. } | TaskVariable::MatrixLength { .. })
                ) {
                    result_parents.insert(parent.to_string());
                }
            }
        }
        dag.finally_result_parents.insert(task.name.clone(), result_parents);
    }

    match topological_order(spec.tasks.iter().map(|t| t.name.as_str()).collect(), &dag.parents) {
        Ok(order) => dag.order = order,
        Err(cycle) => errors.push(
            format!("{field}.tasks"),
            format!(
                "the tasks form a cycle: {} (through runAfter or result references)",
                cycle.join(" -> ")
            ),
        ),
    }
    errors.into_result(dag)
}

/// Parents first; among tasks ready at the same time, declaration order.
/// On a cycle, returns the tasks on it, the first repeated at the end.
fn topological_order(
    declared: Vec<&str>,
    parents: &BTreeMap<String, BTreeMap<String, Edge>>,
) -> Result<Vec<String>, Vec<String>> {
    let mut order: Vec<String> = Vec::with_capacity(declared.len());
    let mut placed: BTreeSet<&str> = BTreeSet::new();
    while order.len() < declared.len() {
        let next = declared.iter().copied().find(|task| {
            !placed.contains(task)
                && parents
                    .get(*task)
                    .is_none_or(|p| p.keys().all(|parent| placed.contains(parent.as_str())))
        });
        match next {
            Some(task) => {
                placed.insert(task);
                order.push(task.to_string());
            }
            None => {
                let remaining: Vec<&str> = declared.iter().copied().filter(|t| !placed.contains(t)).collect();
                return Err(find_cycle(&remaining, parents));
            }
        }
    }
    Ok(order)
}

/// Walks parent links among `remaining` (every one of which has an
/// unplaced parent) until a task repeats: that stretch is a cycle.
fn find_cycle(remaining: &[&str], parents: &BTreeMap<String, BTreeMap<String, Edge>>) -> Vec<String> {
    let Some(start) = remaining.first() else {
        return Vec::new();
    };
    let mut path: Vec<String> = vec![start.to_string()];
    loop {
        let current = path.last().cloned().unwrap_or_default();
        let next = parents
            .get(&current)
            .and_then(|p| p.keys().find(|parent| remaining.contains(&parent.as_str())))
            .cloned();
        let Some(next) = next else { return path };
        if let Some(position) = path.iter().position(|task| *task == next) {
            // Shown in dependency order: parent -> child.
            let mut cycle: Vec<String> = path[position..].to_vec();
            cycle.reverse();
            cycle.push(cycle[0].clone());
            return cycle;
        }
        path.push(next);
    }
}
