//! Kernel mode's reading of a stack: call site ids standing for stacks not taken or lost,
//! the allocator's and the tracing machinery's frames (not the allocation's), and the objects
//! the kernel frees where the kmem tracepoints cannot see it (not leaks, marked as such).

use crate::skel::kmemleak_lite::defs::{CALL_SITE_STACK_LOST, STACK_ID_CALL_SITE};
use crate::host::symbols::Frame;

/// Kernel mode: a call site id standing for the stacks of allocations recorded under it
/// (kmemleak_lite.h, STACK_ID_CALL_SITE).
#[derive(Clone, Copy)]
pub(super) struct CallSite {
    pub(super) addr: u64,
    /// The stacks were lost (stack table full, collision; counted), rather than not taken
    /// (over --stacks-per-second).
    pub(super) lost: bool,
}

impl CallSite {
    pub(super) fn of(stack_id: i64) -> Option<CallSite> {
        (stack_id <= STACK_ID_CALL_SITE).then_some(CallSite {
            addr: stack_id as u64 | CALL_SITE_STACK_LOST,
            lost: stack_id as u64 & CALL_SITE_STACK_LOST == 0,
        })
    }

    /// The JSON `call_site_only` value.
    pub(super) fn why(self) -> &'static str {
        match self.lost {
            true => "stack_lost",
            false => "over_budget",
        }
    }
}

/// Kernel objects the kernel frees where the kmem tracepoints do not see it: without a free
/// they would stay listed forever, as false leaks. Matched on the allocation's call site (the
/// first frame past the slab allocator). Maple tree nodes (VMA trees, since 6.1) are freed with
/// kmem_cache_free_bulk, or through kfree_rcu, whose batches end in kfree_bulk (6.18: in the
/// cache's RCU sheaf); none has a tracepoint. fentry on kmem_cache_free_bulk sees the bulk
/// frees where the kernel allows it, not the 6.18 sheaf path: these stay marked everywhere.
const UNSEEN_FREES: &[(&str, &str)] = &[
    ("mas_", "maple tree node: freed in bulk or after RCU, where the kmem tracepoints cannot see it; not a leak"),
    ("mt_", "maple tree node: freed in bulk or after RCU, where the kmem tracepoints cannot see it; not a leak"),
];

/// What the kernel side learnt about one allocation stack (kmemleak_lite.h, kstacks).
#[derive(Default, Clone)]
pub struct StackInfo {
    /// Objects of this stack the kernel handed out again while still listed.
    pub reused: u64,
    /// The slab cache, where the tracepoint names it.
    pub cache: Option<String>,
}

/// A stack is judged freed out of sight once at least one of its objects in this many was
/// seen handed out again without a free (counted against what it has listed). A free missed
/// now and then (a skipped program run, counted as `probe_skipped`) stays below it; a stack
/// whose frees all go unseen passes it within a few reports, as its addresses come round.
const REUSED_PER_LISTED: u64 = 4;

/// Why a kernel stack's allocations are not leaks though no free was seen, if they are not:
/// a known call site, or its objects seen reallocated without a free.
pub(super) fn unseen_free(frames: &[&Frame], info: &StackInfo, listed: u64) -> Option<String> {
    let known = call_site(frames)
        .and_then(|f| f.symbol.as_deref())
        .and_then(|site| {
            UNSEEN_FREES
                .iter()
                .find(|(prefix, _)| site.starts_with(prefix))
        });
    if let Some((_, why)) = known {
        return Some((*why).to_string());
    }
    (info.reused > 0 && info.reused * REUSED_PER_LISTED >= listed).then(|| {
        format!(
            "freed where the kmem tracepoints cannot see it (bulk or RCU-batched frees): {} of its objects were handed out again with no free seen; not a leak",
            info.reused
        )
    })
}

/// Kernel allocator functions (prefixes). A kernel stack is taken inside them, where the kmem
/// tracepoint fires; the first frame past them is the code that asked for the memory.
const ALLOCATOR_FUNCTIONS: &[&str] = &[
    "kmem_cache_alloc",
    "__kmem_cache_alloc",
    "kmalloc",
    "__kmalloc",
    "__do_kmalloc",
    "kvmalloc",
    "__kvmalloc",
    "krealloc",
    "alloc_pages",
    "__alloc_pages",
    "__get_free_pages",
];

/// Frames a kernel stack starts with when it is taken from a raw tracepoint program: the
/// program itself and the kernel's code that runs it, above the allocator's tracepoint. Not
/// the allocation's: the report leaves them out.
pub(super) fn is_tracing_frame(symbol: &str) -> bool {
    ["bpf_prog_", "bpf_trace_run", "__bpf_trace_", "__traceiter_"]
        .iter()
        .any(|p| symbol.starts_with(p))
}

/// The first frame outside the allocator: the code that asked for the memory (a frame
/// without a symbol counts as outside).
fn call_site<'f>(frames: &[&'f Frame]) -> Option<&'f Frame> {
    frames.iter().copied().find(|f| {
        !f.symbol
            .as_deref()
            .is_some_and(|s| ALLOCATOR_FUNCTIONS.iter().any(|a| s.starts_with(a)))
    })
}

/// The name a stack goes by in the metrics: its call site (its address when it has no
/// symbol), `[unknown]` for a stack that was not recorded.
pub(super) fn caller(frames: &[&Frame]) -> String {
    match call_site(frames).or(frames.first().copied()) {
        Some(f) => f.symbol.clone().unwrap_or_else(|| f.addr.clone()),
        None => "[unknown]".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(symbol: &str) -> Frame {
        Frame {
            addr: "0x1".into(),
            symbol: Some(symbol.into()),
            offset: None,
            file: None,
            line: None,
            module: None,
            text: String::new(),
        }
    }

    #[test]
    fn call_site_ids_give_the_address_and_why_the_stack_is_missing() {
        let addr: u64 = 0xffff_ffff_8123_4567;
        let budget = CallSite::of(addr as i64).unwrap();
        assert_eq!((budget.addr, budget.why()), (addr, "over_budget"));
        let lost = CallSite::of((addr & !CALL_SITE_STACK_LOST) as i64).unwrap();
        assert_eq!((lost.addr, lost.why()), (addr, "stack_lost"));
        // Stack ids, and bpf_get_stackid's errors, are not call sites.
        assert!(CallSite::of(-17).is_none() && CallSite::of(5).is_none());
    }

    #[test]
    fn maple_tree_nodes_are_marked_by_their_call_site() {
        let stack = |names: &[&str]| names.iter().map(|n| frame(n)).collect::<Vec<_>>();
        let maple = stack(&[
            "kmem_cache_alloc_noprof",
            "mas_preallocate",
            "__mmap_region",
        ]);
        let none = StackInfo::default();
        assert!(unseen_free(&maple.iter().collect::<Vec<_>>(), &none, 10).is_some());
        let file = stack(&["kmem_cache_alloc_noprof", "alloc_empty_file", "path_openat"]);
        assert!(unseen_free(&file.iter().collect::<Vec<_>>(), &none, 10).is_none());
        // Only the call site counts, not a maple tree function further up the stack.
        let deeper = stack(&["__kmalloc_noprof", "vma_alloc_thing", "mas_walk"]);
        assert!(unseen_free(&deeper.iter().collect::<Vec<_>>(), &none, 10).is_none());
    }

    #[test]
    fn stacks_whose_objects_come_back_without_a_free_are_marked() {
        let file = [frame("kmem_cache_alloc_noprof"), frame("alloc_empty_file")];
        let file: Vec<&Frame> = file.iter().collect();
        let reused = |n| StackInfo {
            reused: n,
            cache: None,
        };
        // A free missed now and then (a skipped run) does not hide 100 held files...
        assert!(unseen_free(&file, &reused(1), 100).is_none());
        assert!(unseen_free(&file, &reused(0), 100).is_none());
        // ...a stack whose objects keep coming back is freed out of sight.
        let why = unseen_free(&file, &reused(30), 100).unwrap();
        assert!(why.contains("30 of its objects"), "{why}");
    }
}
