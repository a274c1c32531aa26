//! The plan as a `static`: what `explain()` prints and the job result's metrics use.

use crate::graph::Graph;
use crate::lock::Lock;
use crate::plan::{Edge, Plan};
use proc_macro2::TokenStream;
use quote::quote;
use syn::Expr;

pub fn emit(g: &Graph, plan: &Plan, lock: &Lock) -> TokenStream {
    let nodes = g.nodes.iter().map(|n| {
        let id = n.id as u32;
        let op = if n.is_source() {
            n.word.clone()
        } else {
            n.spec.name.to_string()
        };
        let name = n.label();
        let inputs = n.inputs.iter().map(|&i| i as u32);
        let stage = plan.stage_of[n.id] as u32;
        let partitioning = match plan.edge(n.id) {
            Edge::Source => quote!(Source),
            Edge::Forward => quote!(Forward),
            Edge::Hash => quote!(Hash),
            Edge::Rebalance | Edge::Rescale => quote!(Rebalance),
            Edge::Broadcast => quote!(Broadcast),
        };
        let location = n.location();
        let parallelism = match plan.declared[n.id].literal() {
            Some(p) => {
                let p = p as u32;
                quote!(::core::option::Option::Some(#p))
            }
            None => quote!(::core::option::Option::None),
        };
        let one_to_one = n.spec.one_to_one;
        let uid = match &n.uid {
            Some(Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            })) => {
                let s = s.value();
                quote!(::core::option::Option::Some(#s))
            }
            _ => quote!(::core::option::Option::None),
        };
        quote! {
            ::flow::__private::PlanNode {
                id: #id,
                op: #op,
                name: #name,
                inputs: &[#(#inputs),*],
                stage: #stage,
                partitioning: ::flow::__private::Partitioning::#partitioning,
                location: #location,
                parallelism: #parallelism,
                one_to_one: #one_to_one,
                uid: #uid,
            }
        }
    });
    let stages = plan.stages.iter().map(|s| {
        let id = s.id as u32;
        let nodes = s.nodes.iter().map(|&n| n as u32);
        quote!(::flow::__private::PlanStage { id: #id, nodes: &[#(#nodes),*] })
    });
    let fusable = plan.fusable;
    let (lock_path, track) = (lock.path(), lock.track());
    quote! {
        #track
        static __PLAN: ::flow::__private::Plan = ::flow::__private::Plan {
            nodes: &[#(#nodes),*],
            stages: &[#(#stages),*],
            fusable: #fusable,
            lock: #lock_path,
        };
    }
}
