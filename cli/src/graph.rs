//! The drawing of a pipeline's DAG for the dashboard: columns by depth
//! (a task sits one column right of its deepest parent), finally tasks in
//! a column of their own, edges from runAfter and result references
//! (the controller library's `build_dag`). Pure: the page only draws the
//! boxes and lines it is given.

use std::collections::BTreeMap;

use cicd_controller::api::PipelineSpec;
use cicd_controller::pipeline::dag::{Edge, build_dag};
use serde::Serialize;

/// Box size and gaps, in SVG pixels.
pub const NODE_WIDTH: u32 = 170;
pub const NODE_HEIGHT: u32 = 46;
const COLUMN_GAP: u32 = 60;
const ROW_GAP: u32 = 24;
const MARGIN: u32 = 12;

/// One pipeline task, placed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Node {
    /// The pipeline task's name.
    pub name: String,
    /// Depth from the roots (finally tasks: one past the deepest task).
    pub column: u32,
    /// Position inside its column, in declaration order.
    pub row: u32,
    /// Left edge in the SVG.
    pub x: u32,
    /// Top edge in the SVG.
    pub y: u32,
    /// A finally task: drawn apart, it runs whatever happened.
    pub finally: bool,
    /// Has `when` expressions: it may be skipped.
    pub conditional: bool,
    /// Pending, Running, Succeeded, Failed, Skipped or NotStarted.
    pub state: String,
    /// Why it was skipped, or its run's reason.
    pub reason: String,
    /// The child MyTaskRun, once created.
    pub task_run: Option<String>,
}

/// A dependency: `from` must finish before `to` starts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GraphEdge {
    pub from: String,
    pub to: String,
    /// `runAfter` or `results` (a result reference).
    pub kind: &'static str,
}

/// The whole drawing.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Graph {
    pub nodes: Vec<Node>,
    pub edges: Vec<GraphEdge>,
    /// The SVG's size.
    pub width: u32,
    pub height: u32,
    /// Every box's size, so the page draws what was laid out.
    pub node_width: u32,
    pub node_height: u32,
}

/// What happened to each pipeline task, as the page colours it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TaskState {
    /// The state word (see [`Node::state`]).
    pub state: String,
    /// The reason shown under it.
    pub reason: String,
    /// The child run, when there is one.
    pub task_run: Option<String>,
}

/// Lays out `spec`. `states` maps pipeline task names to what happened;
/// tasks missing from it are `NotStarted`. An invalid pipeline (a cycle, an
/// unknown task) is an error with the validation message.
pub fn layout(spec: &PipelineSpec, states: &BTreeMap<String, TaskState>) -> Result<Graph, String> {
    let dag = build_dag(spec, "spec").map_err(|errors| errors.to_string())?;
    let mut column_of: BTreeMap<&str, u32> = BTreeMap::new();
    for task in &dag.order {
        let depth = dag
            .parents
            .get(task)
            .into_iter()
            .flat_map(|parents| parents.keys())
            .filter_map(|parent| column_of.get(parent.as_str()))
            .map(|c| c + 1)
            .max()
            .unwrap_or(0);
        column_of.insert(task.as_str(), depth);
    }
    let finally_column = column_of.values().max().map_or(0, |c| c + 1);

    let mut rows_used: BTreeMap<u32, u32> = BTreeMap::new();
    let mut nodes = Vec::new();
    let regular = spec.tasks.iter().map(|t| (t, false));
    let finally = spec.finally.iter().map(|t| (t, true));
    for (task, is_finally) in regular.chain(finally) {
        let column = if is_finally {
            finally_column
        } else {
            column_of.get(task.name.as_str()).copied().unwrap_or(0)
        };
        let row_slot = rows_used.entry(column).or_insert(0);
        let row = *row_slot;
        *row_slot += 1;
        let state = states.get(&task.name).cloned().unwrap_or_default();
        nodes.push(Node {
            name: task.name.clone(),
            column,
            row,
            x: MARGIN + column * (NODE_WIDTH + COLUMN_GAP),
            y: MARGIN + row * (NODE_HEIGHT + ROW_GAP),
            finally: is_finally,
            conditional: !task.when.is_empty(),
            state: if state.state.is_empty() {
                "NotStarted".to_string()
            } else {
                state.state
            },
            reason: state.reason,
            task_run: state.task_run,
        });
    }

    let mut edges = Vec::new();
    for task in &dag.order {
        for (parent, edge) in dag.parents.get(task).into_iter().flatten() {
            edges.push(GraphEdge {
                from: parent.clone(),
                to: task.clone(),
                kind: match edge {
                    Edge::RunAfter => "runAfter",
                    Edge::Results => "results",
                },
            });
        }
    }
    for (task, parents) in &dag.finally_result_parents {
        for parent in parents {
            edges.push(GraphEdge {
                from: parent.clone(),
                to: task.clone(),
                kind: "results",
            });
        }
    }

    let columns = nodes.iter().map(|n| n.column + 1).max().unwrap_or(0);
    let rows = nodes.iter().map(|n| n.row + 1).max().unwrap_or(0);
    Ok(Graph {
        width: 2 * MARGIN + columns * NODE_WIDTH + columns.saturating_sub(1) * COLUMN_GAP,
        height: 2 * MARGIN + rows * NODE_HEIGHT + rows.saturating_sub(1) * ROW_GAP,
        nodes,
        edges,
        node_width: NODE_WIDTH,
        node_height: NODE_HEIGHT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(yaml: &str) -> PipelineSpec {
        serde_saphyr::from_str(yaml).expect("pipeline yaml")
    }

    const DIAMOND: &str = r#"
tasks:
  - {name: clone, taskRef: t}
  - {name: test, taskRef: t, runAfter: [clone]}
  - name: tag
    taskRef: t
    params: [{name: rev, value: "$(tasks.clone.results.commit)"}]
  - name: push
    taskRef: t
    runAfter: [test]
    params: [{name: image, value: "$(tasks.tag.results.url)"}]
    when: [{input: "$(params.push)", operator: in, values: ["yes"]}]
finally:
  - name: notify
    taskRef: t
    params: [{name: image, value: "$(tasks.tag.results.url)"}]
"#;

    #[test]
    fn columns_follow_depth_and_finally_comes_last() {
        let graph = layout(&pipeline(DIAMOND), &BTreeMap::new()).expect("valid");
        let at = |name: &str| {
            let node = graph.nodes.iter().find(|n| n.name == name).expect("node");
            (node.column, node.row)
        };
        assert_eq!(at("clone"), (0, 0));
        assert_eq!(at("test"), (1, 0));
        assert_eq!(at("tag"), (1, 1));
        assert_eq!(at("push"), (2, 0));
        assert_eq!(at("notify"), (3, 0));
        assert!(
            graph
                .nodes
                .iter()
                .find(|n| n.name == "notify")
                .is_some_and(|n| n.finally)
        );
        assert!(
            graph
                .nodes
                .iter()
                .find(|n| n.name == "push")
                .is_some_and(|n| n.conditional)
        );
        assert_eq!(graph.width, 2 * MARGIN + 4 * NODE_WIDTH + 3 * COLUMN_GAP);
        assert_eq!(graph.height, 2 * MARGIN + 2 * NODE_HEIGHT + ROW_GAP);
    }

    #[test]
    fn edges_come_from_run_after_and_result_references() {
        let graph = layout(&pipeline(DIAMOND), &BTreeMap::new()).expect("valid");
        let mut edges: Vec<(String, String, &str)> = graph
            .edges
            .iter()
            .map(|e| (e.from.clone(), e.to.clone(), e.kind))
            .collect();
        edges.sort();
        let expected = [
            ("clone", "tag", "results"),
            ("clone", "test", "runAfter"),
            ("tag", "notify", "results"),
            ("tag", "push", "results"),
            ("test", "push", "runAfter"),
        ];
        let expected: Vec<(String, String, &str)> = expected
            .iter()
            .map(|(a, b, k)| (a.to_string(), b.to_string(), *k))
            .collect();
        assert_eq!(edges, expected);
    }

    #[test]
    fn states_colour_nodes_and_the_rest_have_not_started() {
        let mut states = BTreeMap::new();
        states.insert(
            "clone".to_string(),
            TaskState {
                state: "Succeeded".into(),
                reason: "Succeeded".into(),
                task_run: Some("r-clone".into()),
            },
        );
        let graph = layout(&pipeline(DIAMOND), &states).expect("valid");
        assert_eq!(graph.nodes[0].state, "Succeeded");
        assert_eq!(graph.nodes[0].task_run.as_deref(), Some("r-clone"));
        assert!(graph.nodes[1..].iter().all(|n| n.state == "NotStarted"));
    }

    #[test]
    fn a_cycle_is_reported_not_drawn() {
        let spec =
            pipeline("tasks:\n  - {name: a, taskRef: t, runAfter: [b]}\n  - {name: b, taskRef: t, runAfter: [a]}\n");
        let error = layout(&spec, &BTreeMap::new()).expect_err("cycle");
        assert!(error.contains("cycle"), "{error}");
    }
}
