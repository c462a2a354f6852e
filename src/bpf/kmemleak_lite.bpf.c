// SPDX-License-Identifier: GPL-2.0
/*
 * kmemleak-lite: every allocation is remembered (address -> size, time, stack id, or in kernel
 * mode over --stacks-per-second its call site) until it is freed; user space reads what is still outstanding at each report. Kernel mode hooks the kmem
 * tracepoints; user mode hooks the allocator of one process with uprobes/uretprobes.
 * User space loads only the programs of the chosen mode (set_autoload).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "kmemleak_lite.h"
#include "common.bpf.h"
#include "user_stack.bpf.h"

const volatile __u64 min_size = 0;
const volatile __u64 max_size = ~0ULL;
const volatile __u32 sample_every = 1;
const volatile bool combined = false;
const volatile __u64 stack_flags = 0;	/* BPF_F_USER_STACK in user mode */
const volatile __u64 page_size = 4096;
const volatile __u32 stacks_per_second = 0; /* kernel mode, user dwarf: 0 takes every stack */
const volatile __u32 stack_bytes = 0; /* user mode: 0 walks frame pointers, else --stack-bytes */

/* Dummy instances so the skeleton generates the Rust types. */
struct alloc_info _alloc_info = {};
struct combined_info _combined_info = {};

/* Sized from user space (--max-allocs) before load. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 262144);
	__type(key, __u64);
	__type(value, struct alloc_info);
} allocs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, DEFAULT_MAX_STACKS);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, PERF_MAX_STACK_DEPTH * sizeof(__u64));
} stack_traces SEC(".maps");

/*
 * Sized from user space to the stack table plus a few slots: its keys are stack ids, and a stack
 * map without BPF_F_REUSE_STACKID hands out at most max_entries distinct ids (entries are never
 * removed), plus the few negative errors, plus the call sites of ksites (kernel mode: sized to
 * its entries too, and a call site is only recorded once it has its ksites entry). So it cannot
 * fill up.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_STACKS + STACK_ERROR_SLOTS);
	__type(key, __s64);
	__type(value, struct combined_info);
} combined_allocs SEC(".maps");

/* -s N: a per-CPU countdown, so exactly one allocation in N is kept. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} sample_count SEC(".maps");

static __always_inline bool keep(__u64 size)
{
	__u32 zero = 0, *n;

	if (size < min_size || size > max_size)
		return false;
	if (sample_every <= 1)
		return true;
	n = bpf_map_lookup_elem(&sample_count, &zero);
	if (!n)
		return true;
	if (++*n < sample_every)
		return false;
	*n = 0;
	return true;
}

/* Returns false when the stack has no entry and none could be made (see combined_allocs). */
static __always_inline bool combined_add(__s64 stack_id, __u64 size, __s64 sign)
{
	struct combined_info *c, zero = {};

	c = bpf_map_lookup_elem(&combined_allocs, &stack_id);
	if (!c) {
		if (sign < 0)
			return true;
		/* Another CPU may create it first: then the lookup below finds it. */
		bpf_map_update_elem(&combined_allocs, &stack_id, &zero, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&combined_allocs, &stack_id);
		if (!c)
			return false;
	}
	__sync_fetch_and_add(&c->bytes, sign * (__s64)size);
	__sync_fetch_and_add(&c->count, sign);
	return true;
}

/* A free (or the old block of a realloc): forget the address; unknown addresses are ignored. */
static __always_inline void record_free(__u64 addr)
{
	struct alloc_info *info;

	/* Most frees are of untracked blocks (older than the tool, filtered, sampled out): a
	 * lockless lookup spares them the bucket lock a delete takes. */
	info = bpf_map_lookup_elem(&allocs, &addr);
	if (!info)
		return;
	if (!combined) {
		bpf_map_delete_elem(&allocs, &addr);
		return;
	}
	/* Copy before the delete; only the CPU whose delete succeeded subtracts. */
	__s64 stack_id = info->stack_id;
	__u64 size = info->size;
	if (bpf_map_delete_elem(&allocs, &addr) == 0)
		combined_add(stack_id, size, -1);
}

/* The allocation's stack id in stack_traces, or bpf_get_stackid's error: -EEXIST (another
 * stack holds the bucket) or -ENOMEM (table full); record_alloc counts it. */
static __always_inline __s64 take_stack(void *ctx)
{
	return bpf_get_stackid(ctx, &stack_traces, stack_flags);
}

/* size filter and sampling already applied. Address reuse replaces the old entry. `stack_id`:
 * take_stack's, or a call site id (kmemleak_lite.h). Returns whether it is tracked. */
static __always_inline bool record_alloc(__u64 addr, __u64 size, __u64 ts, __s64 stack_id)
{
	struct alloc_info info;

	if (!addr)
		return false;
	if (combined)
		record_free(addr);
	info.size = size;
	info.ts = ts;
	info.stack_id = stack_id;
	if (bpf_map_update_elem(&allocs, &addr, &info, BPF_ANY)) {
		count_loss(LOSS_ALLOCS_FULL);
		return false;
	}
	/* Cannot fail (see combined_allocs); if it did, the allocation would be in no total:
	 * untrack it and count it rather than lose it silently. */
	if (combined && !combined_add(stack_id, size, 1)) {
		bpf_map_delete_elem(&allocs, &addr);
		count_loss(LOSS_ALLOCS_FULL);
		return false;
	}
	/* Tracked without its stack: an error, or a call site id standing for a lost stack. */
	if (stack_id < 0 && (stack_id > STACK_ID_CALL_SITE || !(stack_id & CALL_SITE_STACK_LOST)))
		count_loss(LOSS_STACK_LOST);
	return true;
}

/* ---------------------------------------------------------------------------------------- */
/* Kernel mode. The slab programs are raw tracepoints: they get the tracepoint's arguments
 * without the perf record a classic tracepoint program is handed (built, and for
 * kmem_cache_alloc/free the cache's name copied, at every event), and a raw tracepoint program
 * is skipped only when that same program is already running on the CPU, not whenever any BPF
 * tracing program is (an RCU callback freeing inside our allocation program's run would
 * otherwise go unseen, leaving a false leak). The arguments differ between kernels: before
 * 6.1 kmem_cache_alloc was (call_site, ptr, bytes_req, bytes_alloc, gfp) like kmalloc, since
 * then (call_site, ptr, struct kmem_cache *, gfp, node), and its record type of its own
 * (trace_event_raw_kmem_cache_alloc, tested through CO-RE) came with that change. The pointer
 * is the second argument of every slab tracepoint. */

struct trace_event_raw_kmem_cache_alloc___x {
	const void *ptr;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_page_alloc___x {
	unsigned long pfn;
	unsigned int order;
} __attribute__((preserve_access_index));

struct trace_event_raw_mm_page_free___x {
	unsigned long pfn;
	unsigned int order;
} __attribute__((preserve_access_index));

struct kstack_info _kstack_info = {};

/* Kernel mode: allocation stack id -> its cache and how many of its objects were seen freed out
 * of sight (kmemleak_lite.h). One entry per stack id, like combined_allocs: it cannot fill. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, DEFAULT_MAX_STACKS + STACK_ERROR_SLOTS);
	__type(key, __s64);
	__type(value, struct kstack_info);
} kstacks SEC(".maps");

/* The same for the call sites whose allocations are recorded without their stack (key: the
 * call site id). When it is full, a call site's allocations are recorded with their stacks. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, MAX_CALL_SITES);
	__type(key, __s64);
	__type(value, struct kstack_info);
} ksites SEC(".maps");

/*
 * --stacks-per-second: the stacks taken this second per call site and process. Taking a kernel
 * stack is most of an allocation's cost (a microsecond and more, against a few hundred ns for
 * the rest), so a hot call site gets its first N stacks a second and its other allocations are
 * tracked under the call site alone (kmemleak_lite.h: slots, not keys).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1 << BUDGET_SLOT_BITS);
	__type(key, __u32);
	__type(value, struct site_budget);
} site_budgets SEC(".maps");

/* Whether this allocation's stack is taken (within the budget of its call site and process). */
static __always_inline bool stack_in_budget(__u64 call_site, __u64 now)
{
	__u64 tgid;
	__u32 slot;
	struct site_budget *b;

	if (!stacks_per_second)
		return true;
	tgid = bpf_get_current_pid_tgid() >> 32;
	/* Fibonacci hashing: the top bits of the product mix every bit of the pair. The tgid goes
	 * in the top half, which is the same for every kernel address. */
	slot = ((call_site ^ (tgid << 32)) * 0x9E3779B97F4A7C15ULL) >> (64 - BUDGET_SLOT_BITS);
	b = bpf_map_lookup_elem(&site_budgets, &slot);
	if (!b)
		return true;
	if (now - b->window_start >= 1000000000ULL) {
		b->window_start = now;
		b->taken = 1;
		return true;
	}
	/* Checked, then added: threads on several CPUs may each take one stack over. */
	if (b->taken >= stacks_per_second)
		return false;
	__sync_fetch_and_add(&b->taken, 1);
	return true;
}

/* The info entry (kstacks or ksites) of a stack id or call site id; NULL for a lost stack. */
static __always_inline struct kstack_info *kstack_info_of(__s64 id)
{
	if (id >= 0)
		return bpf_map_lookup_elem(&kstacks, &id);
	if (id <= STACK_ID_CALL_SITE)
		return bpf_map_lookup_elem(&ksites, &id);
	return NULL;
}

/* A new kstacks or ksites entry names its cache, if the tracepoint gives it (else ""). */
static __always_inline void cache_name(struct kstack_info *info, struct kmem_cache *cache)
{
	if (cache && !info->cache[0])
		bpf_probe_read_kernel_str(info->cache, sizeof(info->cache), BPF_CORE_READ(cache, name));
}

/* Whether the call site id has its ksites entry (made here, naming the cache, if new). */
static __always_inline bool call_site_entry(__s64 id, struct kmem_cache *cache)
{
	struct kstack_info fresh = {};

	if (bpf_map_lookup_elem(&ksites, &id))
		return true;
	cache_name(&fresh, cache);
	bpf_map_update_elem(&ksites, &id, &fresh, BPF_NOEXIST);
	return bpf_map_lookup_elem(&ksites, &id) != NULL;
}

/* `call_site`: the tracepoint's return address into the code that asked for the memory.
 * `cache`: the slab cache where the tracepoint gives it (else NULL). */
static __always_inline int kernel_alloc(void *ctx, __u64 call_site, const void *ptr, __u64 size,
					struct kmem_cache *cache)
{
	struct kstack_info *k, fresh = {};
	struct alloc_info *old;
	__u64 addr = (__u64)ptr, now;
	__s64 id, stack = 0;
	bool taken = false;

	/* ZERO_SIZE_PTR (16) is what kmalloc(0) returns: nothing to track. */
	if (addr <= 16 || !keep(size))
		return 0;
	/* Handed out again while still listed: the kernel freed it where no tracepoint looks (or
	 * while a free program was skipped). Counted against the stack that allocated it. */
	old = bpf_map_lookup_elem(&allocs, &addr);
	if (old) {
		k = kstack_info_of(old->stack_id);
		if (k)
			__sync_fetch_and_add(&k->reused, 1);
	}
	now = bpf_ktime_get_ns();
	if ((__s64)call_site > STACK_ID_CALL_SITE)
		call_site = 0; /* not a kernel address (never seen): then no call site id */
	/* Over the budget, the call site stands for the stack; and when the stack is lost. */
	if (call_site && !stack_in_budget(call_site, now)) {
		id = (__s64)call_site;
	} else {
		id = stack = take_stack(ctx);
		taken = true;
		if (stack < 0 && call_site)
			id = (__s64)(call_site & ~CALL_SITE_STACK_LOST);
	}
	/* With ksites full, the stack after all (or its error). */
	if (id <= STACK_ID_CALL_SITE && !call_site_entry(id, cache))
		id = taken ? stack : take_stack(ctx);
	if (!record_alloc(addr, size, now, id) || id < 0)
		return 0;
	/* First allocation from this stack: remember its cache (a lookup, not an update, after). */
	if (bpf_map_lookup_elem(&kstacks, &id))
		return 0;
	cache_name(&fresh, cache);
	bpf_map_update_elem(&kstacks, &id, &fresh, BPF_NOEXIST);
	return 0;
}

SEC("raw_tp/kmalloc")
int BPF_PROG(kmalloc, unsigned long call_site, const void *ptr, size_t bytes_req, size_t bytes_alloc)
{
	return kernel_alloc(ctx, call_site, ptr, bytes_alloc, NULL);
}

SEC("raw_tp/kmem_cache_alloc")
int BPF_PROG(kmem_cache_alloc, unsigned long call_site, const void *ptr, void *arg2, size_t arg3)
{
	if (bpf_core_type_exists(struct trace_event_raw_kmem_cache_alloc___x)) {
		struct kmem_cache *s = arg2;

		return kernel_alloc(ctx, call_site, ptr, BPF_CORE_READ(s, size), s);
	}
	return kernel_alloc(ctx, call_site, ptr, arg3, NULL);
}

/* Only on kernels that still have the _node tracepoints (user space checks tracefs): before
 * 6.1, (call_site, ptr, bytes_req, bytes_alloc, gfp, node). */
SEC("raw_tp/kmalloc_node")
int BPF_PROG(kmalloc_node, unsigned long call_site, const void *ptr, size_t bytes_req,
	     size_t bytes_alloc)
{
	return kernel_alloc(ctx, call_site, ptr, bytes_alloc, NULL);
}

SEC("raw_tp/kmem_cache_alloc_node")
int BPF_PROG(kmem_cache_alloc_node, unsigned long call_site, const void *ptr, size_t bytes_req,
	     size_t bytes_alloc)
{
	return kernel_alloc(ctx, call_site, ptr, bytes_alloc, NULL);
}

SEC("raw_tp/kfree")
int BPF_PROG(kfree, unsigned long call_site, const void *ptr)
{
	record_free((__u64)ptr);
	return 0;
}

SEC("raw_tp/kmem_cache_free")
int BPF_PROG(kmem_cache_free, unsigned long call_site, const void *ptr)
{
	record_free((__u64)ptr);
	return 0;
}

/*
 * Bulk frees pass no tracepoint: kmem_cache_free_bulk, and kfree_bulk (an inline call of it),
 * where kfree_rcu's batches end (kvfree_rcu_bulk) and the maple tree frees its nodes
 * (mt_free_bulk). Where the kernel allows fentry (user space tries it first and falls back to
 * the tracepoints alone), they are seen here. A batch is at most a page of pointers (510 on
 * x86_64, KVFREE_BULK_MAX_ENTR); longer ones leave their tail listed, and the report marks
 * what was freed out of sight (kstacks' `reused`).
 */
#define MAX_BULK 512

SEC("fentry/kmem_cache_free_bulk")
int kmem_cache_free_bulk(unsigned long long *ctx)
{
	__u64 size = 0, p = 0;

	/* bpf_get_func_arg (5.17+), not the typed arguments: verifiers refuse a fentry program's
	 * direct read of a `void **` argument ("type PTR is not a struct"). Where the helper is
	 * missing, this program does not load and user space falls back to the tracepoints. */
	if (bpf_get_func_arg(ctx, 1, &size) || bpf_get_func_arg(ctx, 2, &p))
		return 0;
	for (__u32 i = 0; i < MAX_BULK && i < size; i++) {
		__u64 addr = 0;

		bpf_probe_read_kernel(&addr, sizeof(addr), (void *)(p + i * sizeof(addr)));
		record_free(addr);
	}
	return 0;
}

/* --pages: keyed by page frame number, which never collides with a kernel address. */
SEC("tracepoint/kmem/mm_page_alloc")
int mm_page_alloc(void *ctx)
{
	struct trace_event_raw_mm_page_alloc___x *args = ctx;
	__u64 pfn = args->pfn;
	__u64 size = page_size << args->order;

	if (pfn == ~0UL || !keep(size))
		return 0;
	record_alloc(pfn, size, bpf_ktime_get_ns(), take_stack(ctx));
	return 0;
}

SEC("tracepoint/kmem/mm_page_free")
int mm_page_free(void *ctx)
{
	struct trace_event_raw_mm_page_free___x *args = ctx;

	record_free(args->pfn);
	return 0;
}

struct trace_event_raw_mm_page_free_batched___x {
	unsigned long pfn;
} __attribute__((preserve_access_index));

/* Pages freed in batches (release_pages, free_unref_folios: the page cache, munmap, exit) do not
 * pass mm_page_free; without this their allocations would stay listed as leaks. */
SEC("tracepoint/kmem/mm_page_free_batched")
int mm_page_free_batched(void *ctx)
{
	struct trace_event_raw_mm_page_free_batched___x *args = ctx;

	record_free(args->pfn);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* User mode: entry probes remember the arguments per thread, return probes record the block. */

struct pending {
	__u64 size;
	__u64 old;    /* realloc: the block being replaced */
	__u64 memptr; /* posix_memalign: where the result is written */
	__u32 depth;  /* allocator calls nested inside this one (glibc calls itself, and mmap) */
	__u32 skip;   /* filtered out by size or sampling */
};

/* One entry per thread inside the allocator; sized from user space (--max-threads). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
	__type(value, struct pending);
} pending SEC(".maps");

static __always_inline int enter(__u64 size, __u64 old, __u64 memptr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &tid), fresh = {};

	if (p) {
		/* A nested call (realloc -> malloc, malloc -> mmap): the outer call accounts. */
		p->depth++;
		return 0;
	}
	fresh.size = size;
	fresh.old = old;
	fresh.memptr = memptr;
	fresh.skip = !keep(size);
	/* Its return then finds no entry: the allocation (and a realloc's free) goes unseen. A
	 * call filtered out by size or sampling loses nothing that would be shown. */
	if (bpf_map_update_elem(&pending, &tid, &fresh, BPF_ANY) && !fresh.skip)
		count_loss(LOSS_PENDING_FULL);
	return 0;
}

/*
 * A thread that ends inside the allocator (pthread_exit from a signal handler, a longjmp out
 * of one) leaves its entry behind; the next thread with its id would look nested and go
 * unrecorded. Its call never returned a block, so nothing is lost: the entry just goes.
 */
SEC("raw_tp/sched_process_exit") /* raw: attached by name, no tracefs needed */
int thread_exit(void *ctx)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&pending, &tid);
	return 0;
}

/* ---------------------------------------------------------------------------------------- */
/* User mode, --unwind dwarf (kmemleak_lite.h, stack_sample). */

/* The stack id of a user allocation recorded at its allocator's return (see take_stack). */
static __always_inline __s64 user_stack(struct pt_regs *ctx)
{
	__u32 cpu = bpf_get_smp_processor_id();
	__u64 ip = PT_REGS_IP(ctx);
	__s64 site = STACK_ID_USER_SITE | (__s64)ip, id;
	struct stack_sample *s;

	if (!stack_bytes)
		return take_stack(ctx);
	if (!stack_in_budget(ip, bpf_ktime_get_ns()))
		return site;
	s = begin_sample(cpu);
	if (!s) {
		count_loss(LOSS_SAMPLE_LOST);
		return site | USER_SITE_LOST;
	}
	/* Numbered per CPU (the entry keeps the last number): no atomic that returns a value,
	 * which 5.10's BPF lacks. */
	s->seq = (((s->seq >> SAMPLE_CPU_BITS) + 1) << SAMPLE_CPU_BITS) | (cpu & SAMPLE_CPU_MASK);
	id = STACK_ID_SAMPLE | (__s64)(s->seq & (USER_SITE_LOST - 1));
	if (send_sample(ctx, s, stack_bytes)) {
		count_loss(LOSS_SAMPLE_LOST);
		return site | USER_SITE_LOST;
	}
	return id;
}

/* Returns the call's entry, removed, or false while unwinding a nested call. */
static __always_inline bool leave(struct pending *out)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending, &tid);

	if (!p)
		return false;
	if (p->depth) {
		p->depth--;
		return false;
	}
	*out = *p;
	bpf_map_delete_elem(&pending, &tid);
	return true;
}

static __always_inline int leave_alloc(void *ctx, __u64 addr)
{
	struct pending p;

	if (leave(&p) && !p.skip)
		record_alloc(addr, p.size, bpf_ktime_get_ns(), user_stack(ctx));
	return 0;
}

SEC("uprobe")
int BPF_UPROBE(malloc_enter, size_t size)
{
	return enter(size, 0, 0);
}

SEC("uprobe")
int BPF_UPROBE(calloc_enter, size_t nmemb, size_t size)
{
	return enter(nmemb * size, 0, 0);
}

SEC("uprobe")
int BPF_UPROBE(realloc_enter, void *ptr, size_t size)
{
	return enter(size, (__u64)ptr, 0);
}

SEC("uprobe")
int BPF_UPROBE(posix_memalign_enter, void **memptr, size_t alignment, size_t size)
{
	return enter(size, 0, (__u64)memptr);
}

/* aligned_alloc and memalign: (alignment, size). */
SEC("uprobe")
int BPF_UPROBE(memalign_enter, size_t alignment, size_t size)
{
	return enter(size, 0, 0);
}

SEC("uprobe")
int BPF_UPROBE(valloc_enter, size_t size)
{
	return enter(size, 0, 0);
}

SEC("uprobe")
int BPF_UPROBE(pvalloc_enter, size_t size)
{
	return enter((size + page_size - 1) & ~(page_size - 1), 0, 0);
}

SEC("uprobe")
int BPF_UPROBE(mmap_enter, void *addr, size_t length)
{
	return enter(length, 0, 0);
}

/* malloc, calloc, aligned_alloc, memalign, valloc, pvalloc. */
SEC("uretprobe")
int BPF_URETPROBE(alloc_exit, void *ret)
{
	return leave_alloc(ctx, (__u64)ret);
}

SEC("uretprobe")
int BPF_URETPROBE(mmap_exit, void *ret)
{
	if ((long)ret == -1) /* MAP_FAILED */
		ret = 0;
	return leave_alloc(ctx, (__u64)ret);
}

SEC("uretprobe")
int BPF_URETPROBE(realloc_exit, void *ret)
{
	struct pending p;

	if (!leave(&p))
		return 0;
	/* Failed with a size: the old block is still valid. realloc(p, 0) frees it. */
	if (!ret && p.size)
		return 0;
	if (p.old)
		record_free(p.old);
	if (ret && !p.skip)
		record_alloc((__u64)ret, p.size, bpf_ktime_get_ns(), user_stack(ctx));
	return 0;
}

SEC("uretprobe")
int BPF_URETPROBE(posix_memalign_exit, int ret)
{
	struct pending p;
	__u64 addr = 0;

	if (!leave(&p) || ret != 0 || p.skip)
		return 0;
	if (bpf_probe_read_user(&addr, sizeof(addr), (void *)p.memptr))
		return 0;
	record_alloc(addr, p.size, bpf_ktime_get_ns(), user_stack(ctx));
	return 0;
}

/* free and munmap: the block goes at once (a free never fails). */
SEC("uprobe")
int BPF_UPROBE(free_enter, void *ptr)
{
	record_free((__u64)ptr);
	return 0;
}

/*
 * The dynamic loader calls _dl_debug_state (glibc's and musl's; the hook debuggers stop at)
 * before and after it maps or unmaps libraries: at start-up, dlopen, dlclose, and after an
 * exec. One record (just its ts) wakes user space, which re-reads the process's maps then, so
 * frames in a library dlopen'ed since the last report are named even if the process ends
 * before it.
 */
SEC("uprobe")
int BPF_UPROBE(loader_changed)
{
	__u64 *e = reserve_event(sizeof(*e));

	if (!e)
		return 0;
	*e = bpf_ktime_get_ns();
	submit_event(ctx, e);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
