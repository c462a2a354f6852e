//! What is outstanding, read from the BPF maps in batches and grouped per stack: the totals
//! (and with -a the single allocations), then the top stacks of a report with their frames
//! resolved and what the kernel side learnt about each.

use std::mem::size_of;
use std::os::fd::AsRawFd;

use anyhow::{bail, Result};
use libbpf_rs::{MapCore, MapFlags};

use super::kernel::{caller, is_tracing_frame, CallSite, StackInfo};
use super::{Mode, Reporter};
use crate::skel::kmemleak_lite::types::{alloc_info, combined_info, kstack_info};
use crate::host::symbols::Frame;
use crate::tools::kmemleak_lite::unwind::UserId;

/// The top stacks of one report, most bytes first: (stack id, bytes, allocations), each
/// one's frames (addresses, the tracing frames left out in kernel mode) and what the kernel
/// side learnt about it.
pub(super) struct Top {
    pub(super) top: Vec<(i64, u64, u64)>,
    pub(super) stacks: Vec<Vec<u64>>,
    pub(super) infos: Vec<StackInfo>,
}

impl Reporter<'_> {
    /// Totals per stack (and, with -a, the single allocations) of what is outstanding now.
    pub(super) fn gather(&mut self, now_ns: u64) -> Result<()> {
        self.totals.clear();
        self.listed.clear();
        let older_ns = self.older_ns;
        let (combined, show_allocs) = (self.combined, self.show_allocs);
        let mut live = std::collections::HashSet::new();
        if !combined || show_allocs {
            let totals = &mut self.totals;
            let listed = &mut self.listed;
            let user_stacks = self.user_stacks.as_ref();
            let live = &mut live;
            for_each_entry(
                self.allocs,
                &mut self.keys,
                &mut self.values,
                |key, value| {
                    let addr = u64::from_ne_bytes(key.try_into().expect("8-byte key"));
                    let mut info: alloc_info = read_value(value);
                    if let Some(stacks) = user_stacks {
                        live.insert(info.stack_id);
                        info.stack_id = stacks.canonical(info.stack_id);
                    }
                    let age = now_ns.saturating_sub(info.ts);
                    if age < older_ns {
                        return;
                    }
                    if !combined {
                        let t = totals.entry(info.stack_id).or_default();
                        t.0 += info.size;
                        t.1 += 1;
                    }
                    if show_allocs {
                        listed.push((addr, info.size, age, info.stack_id));
                    }
                },
            )?;
        }
        if let Some(stacks) = &mut self.user_stacks {
            stacks.retain(&live);
        }
        if combined {
            let totals = &mut self.totals;
            for_each_entry(
                self.combined_allocs,
                &mut self.keys,
                &mut self.values,
                |key, value| {
                    let id = i64::from_ne_bytes(key.try_into().expect("8-byte key"));
                    let info: combined_info = read_value(value);
                    if (info.count as i64) > 0 && (info.bytes as i64) > 0 {
                        totals.insert(id, (info.bytes, info.count));
                    }
                },
            )?;
        }
        Ok(())
    }

    fn stack_frames(&self, stack_id: i64) -> Vec<u64> {
        if let Some(call_site) = CallSite::of(stack_id) {
            return vec![call_site.addr];
        }
        if let Some(stacks) = &self.user_stacks {
            match UserId::of(stack_id) {
                Some(UserId::Site { addr, .. }) => return vec![addr],
                Some(UserId::Sample(_)) => {
                    return stacks
                        .stack(stack_id)
                        .map(|s| s.frames.clone())
                        .unwrap_or_default()
                }
                None => {}
            }
        }
        if stack_id < 0 {
            return Vec::new();
        }
        let Ok(Some(raw)) = self
            .stacks
            .lookup(&(stack_id as u32).to_ne_bytes(), MapFlags::ANY)
        else {
            return Vec::new();
        };
        raw.chunks_exact(8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
            .take_while(|&a| a != 0)
            .collect()
    }

    /// Kernel mode: what the kernel side learnt about a stack or a call site recorded without
    /// stacks (nothing for a stack lost, or in user mode).
    fn stack_info(&self, stack_id: i64) -> StackInfo {
        let map = match CallSite::of(stack_id) {
            Some(_) => self.ksites,
            None => self.kstacks,
        };
        let Ok(Some(raw)) = map.lookup(&stack_id.to_ne_bytes(), MapFlags::ANY) else {
            return StackInfo::default();
        };
        let k: kstack_info = read_value(&raw);
        let name: Vec<u8> = k
            .cache
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        StackInfo {
            reused: k.reused,
            cache: (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned()),
        }
    }

    /// The top stacks (-T) of what [`Reporter::gather`] totalled, their frames resolved; with
    /// metrics exported, the rows of the exposition too.
    pub(super) fn top_stacks(&mut self) -> Top {
        let mut top: Vec<(i64, u64, u64)> = self
            .totals
            .iter()
            .map(|(&id, &(bytes, count))| (id, bytes, count))
            .collect();
        top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(b.2.cmp(&a.2)).then(a.0.cmp(&b.0)));
        top.truncate(self.top);
        let mut stacks: Vec<Vec<u64>> = top.iter().map(|t| self.stack_frames(t.0)).collect();
        let all: Vec<u64> = stacks.iter().flatten().copied().collect();
        self.symbols.resolve(&all);
        if matches!(self.mode, Mode::Kernel) {
            for frames in &mut stacks {
                let ours = frames
                    .iter()
                    .take_while(|&&a| {
                        self.symbols
                            .cached(a)
                            .and_then(|f| f.symbol.as_deref())
                            .is_some_and(is_tracing_frame)
                    })
                    .count();
                frames.drain(..ours);
            }
        }
        self.listed.sort_unstable();
        if self.sink.exports_metrics() {
            let symbols = &self.symbols;
            self.exported = top
                .iter()
                .zip(&stacks)
                .map(|(&(id, bytes, count), frames)| {
                    let frames: Vec<&Frame> =
                        frames.iter().filter_map(|&a| symbols.cached(a)).collect();
                    (id, bytes, count, caller(&frames))
                })
                .collect();
        }

        let kernel = matches!(self.mode, Mode::Kernel);
        let infos: Vec<StackInfo> = top
            .iter()
            .map(|t| match kernel {
                true => self.stack_info(t.0),
                false => StackInfo::default(),
            })
            .collect();
        Top { top, stacks, infos }
    }
}

/// A map value from a byte buffer with no particular alignment.
fn read_value<T: plain::Plain + Default>(bytes: &[u8]) -> T {
    let mut value = T::default();
    let _ = plain::copy_from_bytes(&mut value, bytes);
    value
}

/// Every entry of a hash map, read in batches (one syscall per few thousand entries) into
/// buffers that are reused from report to report.
fn for_each_entry(
    map: &dyn MapCore,
    keys: &mut Vec<u8>,
    values: &mut Vec<u8>,
    mut f: impl FnMut(&[u8], &[u8]),
) -> Result<()> {
    const BATCH: usize = 4096;
    let (ks, vs) = (map.key_size() as usize, map.value_size() as usize);
    keys.resize(ks * BATCH, 0);
    values.resize(vs * BATCH, 0);
    let mut token_in = [0u8; 64];
    let mut token_out = [0u8; 64];
    let mut first = true;
    let opts = libbpf_rs::libbpf_sys::bpf_map_batch_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    loop {
        let mut count = BATCH as u32;
        // SAFETY: the key and value buffers hold BATCH entries each, `count` says so, and the tokens are the map's key size.
        let ret = unsafe {
            libbpf_rs::libbpf_sys::bpf_map_lookup_batch(
                map.as_fd().as_raw_fd(),
                if first {
                    std::ptr::null_mut()
                } else {
                    token_in.as_mut_ptr().cast()
                },
                token_out.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let done = ret == -libc::ENOENT;
        if ret < 0 && !done {
            if ret == -libc::EINTR {
                continue;
            }
            bail!(
                "reading the allocation table: {}",
                std::io::Error::from_raw_os_error(-ret)
            );
        }
        let count = (count as usize).min(BATCH);
        for i in 0..count {
            f(&keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs]);
        }
        if done {
            return Ok(());
        }
        token_in = token_out;
        first = false;
    }
}
