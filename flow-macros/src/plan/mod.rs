//! Stages: maximal chains of operators fused into one loop per subtask.
//!
//! A new stage starts at every source, at every partitioning (`key_by`: hash; `rebalance`:
//! round-robin; `broadcast`: to every subtask), at every operator with several inputs (`union`,
//! the two-input operators) and wherever the declared parallelism changes (round-robin, as
//! Flink does). A partitioning has no parallelism of its own: it takes that of the operator
//! after it, so a keyed operator always runs in its `key_by`'s stage. A partitioning read only
//! by two-input operators stays at the end of its input's stage and partitions their input
//! edge instead.

use crate::check::parallelism_literal;
use crate::diagnostic::Diagnostics;
use crate::graph::{Graph, Node};
use crate::ops::{Exchange, Port, Role};

/// A node's parallelism as far as the compiler knows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Declared {
    /// The env's `--parallelism`.
    Default,
    /// A literal, or 1 for a non-parallel source or `window_all`.
    Fixed(usize),
}

impl Declared {
    pub fn literal(self) -> Option<usize> {
        match self {
            Declared::Default => None,
            Declared::Fixed(n) => Some(n),
        }
    }
}

/// How rows reach a node from one of its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edge {
    /// A source has no input.
    Source,
    /// The same stage: a call.
    Forward,
    /// To the subtask of the key's hash.
    Hash,
    /// Round-robin over every subtask (`rebalance()`).
    Rebalance,
    /// One-to-one when both sides have the same parallelism at run time, round-robin
    /// otherwise (a parallelism change, the inputs of `union` and of two-input operators).
    Rescale,
    /// Every row to every subtask.
    Broadcast,
}

pub struct Stage {
    pub id: usize,
    pub head: usize,
    pub nodes: Vec<usize>,
}

pub struct Plan {
    pub declared: Vec<Declared>,
    /// Per node, per input.
    pub edges: Vec<Vec<Edge>>,
    pub stage_of: Vec<usize>,
    pub stages: Vec<Stage>,
    /// No operator with several inputs: with one parallelism for every stage (and only
    /// `key_by` between stages above 1) the job runs fused, one task per source subtask.
    pub fusable: bool,
}

impl Plan {
    /// Whether input `k` of `node` crosses stages.
    pub fn is_boundary(&self, node: usize, k: usize) -> bool {
        !matches!(self.edges[node][k], Edge::Forward | Edge::Source)
    }

    /// How rows reach `node` (its first input's edge), for the static plan.
    pub fn edge(&self, node: usize) -> Edge {
        self.edges[node].first().copied().unwrap_or(Edge::Source)
    }
}

/// Whether `n` is a partitioning read only by operators with several inputs: it then
/// partitions their input edge and stays in its input's stage.
pub fn absorbed(g: &Graph, n: &Node) -> bool {
    matches!(n.spec.role, Role::Partition(_))
        && !n.outputs.is_empty()
        && n.outputs.iter().all(|&c| two_input(g.node(c)))
}

/// An operator with two inputs (after `connect` or a join).
fn two_input(n: &Node) -> bool {
    n.spec.role == Role::Operator && n.inputs.len() > 1
}

fn partition_edge(exchange: Exchange) -> Edge {
    match exchange {
        Exchange::Hash => Edge::Hash,
        Exchange::Rebalance => Edge::Rebalance,
        Exchange::Broadcast => Edge::Broadcast,
    }
}

pub fn plan(g: &Graph, diag: &mut Diagnostics) -> Plan {
    let declared = declare(g);
    let mut edges = Vec::with_capacity(g.nodes.len());
    let mut stage_of = vec![0; g.nodes.len()];
    let mut stages: Vec<Stage> = Vec::new();
    for node in &g.nodes {
        let e = input_edges(g, node, &declared, diag);
        let same_stage = e.len() == 1 && e[0] == Edge::Forward;
        edges.push(e);
        if same_stage {
            let s = stage_of[node.inputs[0]];
            stage_of[node.id] = s;
            stages[s].nodes.push(node.id);
        } else {
            let s = stages.len();
            stage_of[node.id] = s;
            stages.push(Stage {
                id: s,
                head: node.id,
                nodes: vec![node.id],
            });
        }
    }
    let fusable = !g.nodes.iter().any(|n| n.inputs.len() > 1);
    Plan {
        declared,
        edges,
        stage_of,
        stages,
        fusable,
    }
}

/// Each node's parallelism as declared.
fn declare(g: &Graph) -> Vec<Declared> {
    let mut declared = vec![Declared::Default; g.nodes.len()];
    for node in &g.nodes {
        declared[node.id] = match node.parallelism.as_ref().and_then(parallelism_literal) {
            Some(Ok(p)) => Declared::Fixed(p),
            _ if node.is_source() && node.word != "source" => Declared::Fixed(1),
            // `window_all` runs in one subtask, as in Flink.
            _ if node.port == Port::AllWindowed => Declared::Fixed(1),
            // So does `collect` (Flink's `execute_and_collect`): the rows of one upstream
            // subtask arrive in their order. Right after a `key_by` it reads the keyed stream
            // in its `key_by`'s stage, at that stage's parallelism.
            _ if node.word == "collect" && g.node(node.inputs[0]).spec.output() != Port::Keyed => {
                Declared::Fixed(1)
            }
            _ => Declared::Default,
        };
    }
    // Timestamps are assigned in the source's split, a side output leaves its operator in the
    // same subtask, and an absorbed partitioning stays in its input's stage: same stage, same
    // parallelism (unless set explicitly).
    for node in &g.nodes {
        let follows_input = node.spec.role == Role::Assigner
            || (node.spec.role == Role::SideOutput && node.parallelism.is_none())
            || absorbed(g, node);
        if follows_input {
            declared[node.id] = declared[node.inputs[0]];
        }
    }
    // The other partitionings and merges take their first consumer's parallelism (reverse
    // order: consumers have larger ids).
    for node in g.nodes.iter().rev() {
        if matches!(node.spec.role, Role::Partition(_) | Role::Merge) && !absorbed(g, node) {
            if let Some(&c) = node.outputs.first() {
                declared[node.id] = declared[c];
            }
        }
    }
    declared
}

/// How rows reach `node` from each of its inputs.
fn input_edges(g: &Graph, node: &Node, declared: &[Declared], diag: &mut Diagnostics) -> Vec<Edge> {
    if node.is_source() {
        return vec![Edge::Source];
    }
    let same = |i: usize| declared[i] == declared[node.id];
    match node.spec.role {
        Role::Partition(exchange) if !absorbed(g, node) => vec![partition_edge(exchange)],
        Role::Merge => vec![Edge::Rescale; node.inputs.len()],
        _ if node.inputs.len() > 1 => node
            .inputs
            .iter()
            .map(|&i| match g.node(i).spec.role {
                Role::Partition(exchange) => partition_edge(exchange),
                _ => Edge::Rescale,
            })
            .collect(),
        _ if same(node.inputs[0]) => vec![Edge::Forward],
        _ => {
            let input = g.node(node.inputs[0]);
            if input.spec.output() == Port::Keyed && !absorbed(g, input) {
                diag.error(node.span, format_args!(
                    "`{}` reads a keyed stream, so it must have the parallelism of the operators sharing its `key_by`",
                    node.word
                ));
            }
            vec![Edge::Rescale]
        }
    }
}
