//! The static description of a job that `flow!` emits: operators with names and source
//! locations, stages, partitioning. `explain` renders it as text or Graphviz DOT; the job
//! result's per-operator metrics are laid over it.

use std::fmt::Write;

/// How rows reach an operator from its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partitioning {
    /// A source: no input.
    Source,
    /// In the same fused stage: a function call, no exchange.
    Forward,
    /// Across workers by the stable hash of the key (`key_by`).
    Hash,
    /// Across workers round-robin (`rebalance`, a parallelism change, `union` inputs).
    Rebalance,
    /// Every row to every subtask (`broadcast`).
    Broadcast,
}

impl Partitioning {
    /// Its name in `--explain` and the dashboard: `hash`, `forward`, ...
    pub fn label(self) -> &'static str {
        match self {
            Partitioning::Source => "source",
            Partitioning::Forward => "forward",
            Partitioning::Hash => "hash",
            Partitioning::Rebalance => "rebalance",
            Partitioning::Broadcast => "broadcast",
        }
    }
}

/// One operator of the plan.
#[derive(Debug)]
pub struct PlanNode {
    /// Its index in [`Plan::nodes`] (topological order).
    pub id: u32,
    /// The DSL word (`map`, `key_by`, ...).
    pub op: &'static str,
    /// Its name: `.name("...")`, or the DSL word with the function's name.
    pub name: &'static str,
    /// The operators it reads from.
    pub inputs: &'static [u32],
    /// The stage it runs in.
    pub stage: u32,
    /// How its input rows reach it.
    pub partitioning: Partitioning,
    /// Where the user wrote it: `file:line:column`.
    pub location: &'static str,
    /// `.parallelism(n)`, if set.
    pub parallelism: Option<u32>,
    /// `.uid("..")`, if set: the id of its state in checkpoints.
    pub uid: Option<&'static str>,
    /// Whether it emits exactly one row per input row (its output count is its input count).
    pub one_to_one: bool,
}

/// One stage: operators fused into one loop per subtask.
#[derive(Debug)]
pub struct PlanStage {
    /// Its index in [`Plan::stages`].
    pub id: u32,
    /// Its operators, head first.
    pub nodes: &'static [u32],
}

/// The plan of one `flow!` block.
#[derive(Debug)]
pub struct Plan {
    /// Operators in topological order.
    pub nodes: &'static [PlanNode],
    /// Stages in topological order.
    pub stages: &'static [PlanStage],
    /// Whether the job can run fused, one task per source subtask running every stage (no
    /// multi-input operator; see [`JobBuilder::fused`](crate::exec::JobBuilder::fused)).
    pub fusable: bool,
    /// The `flow.lock` this block's operators are checked against when built, and that a
    /// debug build's run completes (README, "State-schema lock").
    pub lock: &'static str,
}

impl Plan {
    /// The stable id under which node `node` of this plan (the job's `graph`-th `flow!` block)
    /// keeps its state in checkpoints: its `.uid("..")`, or else the DSL word and the node's
    /// index (`reduce-3`), prefixed with the block's index after the first (`g1.reduce-3`).
    pub fn uid(&self, graph: usize, node: u32) -> String {
        if let Some(uid) = self.nodes.get(node as usize).and_then(|n| n.uid) {
            return uid.to_string();
        }
        let op = self.nodes.get(node as usize).map_or("node", |n| n.op);
        if graph == 0 {
            format!("{op}-{node}")
        } else {
            format!("g{graph}.{op}-{node}")
        }
    }

    /// Per operator, summed over its subtasks: rows out as the subtasks counted them (`out`,
    /// for the nodes that report, `reported`), rows in as the sum of the inputs' rows out.
    pub(crate) fn metrics(
        &self,
        out: &[u64],
        reported: &[bool],
        late: &[u64],
    ) -> Vec<crate::exec::OperatorMetrics> {
        self.count(None, out, reported, late, 0)
            .into_iter()
            .map(|(_, m)| m)
            .collect()
    }

    /// The nodes one subtask of stage `stage` runs: the stage's own, and when the job is
    /// `fused` (one task per source subtask) every node downstream of them too.
    pub(crate) fn task_nodes(&self, stage: usize, fused: bool) -> Vec<bool> {
        let mut runs = vec![false; self.nodes.len()];
        for n in self.nodes {
            runs[n.id as usize] =
                n.stage as usize == stage || (fused && n.inputs.iter().any(|&i| runs[i as usize]));
        }
        runs
    }

    /// Per operator one subtask runs (`runs`, from [`Plan::task_nodes`]), with its plan node:
    /// as [`Plan::metrics`], but an operator whose input comes from another stage received
    /// `received` rows (what the subtask's input gates delivered).
    pub(crate) fn subtask_metrics(
        &self,
        runs: &[bool],
        out: &[u64],
        reported: &[bool],
        late: &[u64],
        received: u64,
    ) -> Vec<(u32, crate::exec::OperatorMetrics)> {
        self.count(Some(runs), out, reported, late, received)
    }

    fn count(
        &self,
        runs: Option<&[bool]>,
        out: &[u64],
        reported: &[bool],
        late: &[u64],
        received: u64,
    ) -> Vec<(u32, crate::exec::OperatorMetrics)> {
        let mut rows_out = vec![0u64; self.nodes.len()];
        let mut result = Vec::with_capacity(self.nodes.len());
        for n in self.nodes {
            let i = n.id as usize;
            let rows_in: u64 = match runs {
                Some(runs) if !runs[i] => continue,
                Some(runs) if n.inputs.iter().any(|&p| !runs[p as usize]) => received,
                _ => n.inputs.iter().map(|&p| rows_out[p as usize]).sum(),
            };
            rows_out[i] = if reported[i] || !n.one_to_one {
                out[i]
            } else {
                rows_in
            };
            result.push((
                n.id,
                crate::exec::OperatorMetrics {
                    name: n.name,
                    rows_in,
                    rows_out: rows_out[i],
                    late_rows: late[i],
                    skipped_records: 0,
                    dead_lettered_records: 0,
                },
            ));
        }
        result
    }

    /// The plan without what may differ between instances of one job (parallelism, source
    /// locations): one line per operator with its word, name, uid, inputs and partitioning.
    /// Instances of a group compare it (see [`Plan::fingerprint`]).
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for n in self.nodes {
            let inputs: Vec<String> = n.inputs.iter().map(|i| format!("#{i}")).collect();
            let _ = writeln!(
                s,
                "#{} {} `{}` uid={} <- [{}] {}",
                n.id,
                n.op,
                n.name,
                n.uid.unwrap_or("-"),
                inputs.join(", "),
                n.partitioning.label()
            );
        }
        s
    }

    /// A stable 64-bit hash of [`Plan::describe`]: equal for instances of one job.
    pub fn fingerprint(&self) -> u64 {
        crate::hash::stable_hash(&self.describe())
    }

    /// The plan as text: stages with their parallelism, operators with names, locations and
    /// partitioning.
    pub fn explain(&self, stage_parallelism: &[usize], fused: bool) -> String {
        self.explain_remote(stage_parallelism, fused, &[])
    }

    /// [`Plan::explain`], marking the edges into the nodes of `remote` as crossing instances
    /// through the named topics.
    pub fn explain_remote(
        &self,
        stage_parallelism: &[usize],
        fused: bool,
        remote: &[(u32, &str)],
    ) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "{} stage(s){}",
            self.stages.len(),
            if fused {
                ", fused: one task per source subtask runs every stage (a `key_by` sends only the rows of other subtasks' keys)"
            } else {
                ""
            }
        );
        for st in self.stages {
            let p = stage_parallelism.get(st.id as usize).copied().unwrap_or(1);
            let _ = writeln!(s, "stage {} (parallelism {p})", st.id);
            for &id in st.nodes {
                let n = &self.nodes[id as usize];
                let inputs: Vec<String> = n.inputs.iter().map(|i| format!("#{i}")).collect();
                let from = if inputs.is_empty() {
                    String::new()
                } else {
                    format!(" <- {} ({})", inputs.join(", "), n.partitioning.label())
                };
                let _ = writeln!(s, "  #{} {}{}  at {}", n.id, n.name, from, n.location);
                if let Some((_, topic)) = remote.iter().find(|(r, _)| *r == n.id) {
                    let what = if n.inputs.len() > 1 {
                        "both inputs cross"
                    } else {
                        "crosses"
                    };
                    let _ = writeln!(s, "     {what} instances: through Kafka topic `{topic}`");
                }
            }
        }
        s
    }

    /// The plan as a Graphviz DOT digraph, one cluster per stage.
    pub fn explain_dot(&self, stage_parallelism: &[usize]) -> String {
        let mut s = String::from("digraph flow {\n  rankdir=LR;\n  node [shape=box];\n");
        for st in self.stages {
            let p = stage_parallelism.get(st.id as usize).copied().unwrap_or(1);
            let _ = writeln!(
                s,
                "  subgraph cluster_{} {{\n    label=\"stage {} (parallelism {p})\";",
                st.id, st.id
            );
            for &id in st.nodes {
                let n = &self.nodes[id as usize];
                let _ = writeln!(
                    s,
                    "    n{} [label=\"{}\\n{}\"];",
                    n.id,
                    n.name.replace('"', "\\\""),
                    n.location
                );
            }
            s.push_str("  }\n");
        }
        for n in self.nodes {
            for &i in n.inputs {
                let style = if n.partitioning == Partitioning::Forward {
                    "solid"
                } else {
                    "dashed"
                };
                let _ = writeln!(
                    s,
                    "  n{i} -> n{} [label=\"{}\", style={style}];",
                    n.id,
                    n.partitioning.label()
                );
            }
        }
        s.push_str("}\n");
        s
    }
}
