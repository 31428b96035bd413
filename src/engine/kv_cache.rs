//! Keys and values of tokens already run through the model, and a small
//! cache of them across requests.
//!
//! Architecture invariant: a [`KvCache`] always holds the keys and values of
//! exactly `tokens`: in tensors of that length, or in the first
//! `tokens.len()` positions of fixed-size buffers the graph updates in place.
//! A failed step empties it.

use std::collections::VecDeque;

use half::{bf16, f16};
use ort::memory::Allocator;
use ort::value::{DynValue, PrimitiveTensorElementType, Tensor, TensorElementType};

use super::signature::{KvSlot, Signature};

pub(crate) struct KvCache {
    pub tokens: Vec<u32>,
    /// One tensor per [`KvSlot`] of the signature, in its order.
    pub values: Vec<DynValue>,
    /// `Some(positions)` when `values` are buffers of that many positions
    /// that the graph reads and writes in place (past and present bound to
    /// the same memory), so a step copies no keys or values.
    pub capacity: Option<usize>,
}

impl KvCache {
    /// An empty cache: zero-length tensors, or in-place buffers of
    /// `capacity` positions.
    pub fn empty(signature: &Signature, capacity: Option<usize>) -> ort::Result<Self> {
        let values = signature
            .kv
            .iter()
            .map(|slot| match capacity {
                Some(positions) => buffer(slot, positions),
                None => truncated_or_empty(None, slot, 0),
            })
            .collect::<ort::Result<_>>()?;
        Ok(Self {
            tokens: Vec::new(),
            values,
            capacity,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Positions the keys and values occupy in memory.
    pub fn footprint(&self) -> usize {
        self.capacity.unwrap_or(self.tokens.len())
    }

    /// Keeps the first `n` tokens' keys and values.
    pub fn truncate(&mut self, n: usize, signature: &Signature) -> ort::Result<()> {
        if n >= self.tokens.len() {
            return Ok(());
        }
        if self.capacity.is_some() {
            // The positions past `n` are overwritten by the next step.
            self.tokens.truncate(n);
            return Ok(());
        }
        for (value, slot) in self.values.iter_mut().zip(&signature.kv) {
            *value = truncated_or_empty(Some(value), slot, n)?;
        }
        self.tokens.truncate(n);
        Ok(())
    }
}

/// Bytes of keys and values one token takes, over all layers.
pub(crate) fn bytes_per_token(signature: &Signature) -> usize {
    signature
        .kv
        .iter()
        .map(|slot| {
            let per_position: i64 = slot
                .empty_shape
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != slot.seq_axis)
                .map(|(_, &d)| d)
                .product();
            slot.ty.byte_size(per_position.max(0) as usize).unwrap_or(0)
        })
        .sum()
}

/// A zeroed buffer of `positions` along the slot's sequence axis.
fn buffer(slot: &KvSlot, positions: usize) -> ort::Result<DynValue> {
    fn zeroed<T: PrimitiveTensorElementType + Copy + Default + std::fmt::Debug + 'static>(
        shape: Vec<i64>,
    ) -> ort::Result<DynValue> {
        let mut tensor = Tensor::<T>::new(&Allocator::default(), shape)?;
        tensor.extract_tensor_mut().1.fill(T::default());
        Ok(tensor.into_dyn())
    }
    let mut shape = slot.empty_shape.clone();
    shape[slot.seq_axis] = positions as i64;
    match slot.ty {
        TensorElementType::Float16 => zeroed::<f16>(shape),
        TensorElementType::Bfloat16 => zeroed::<bf16>(shape),
        _ => zeroed::<f32>(shape),
    }
}

/// A copy of `value` cut to `n` positions along the slot's sequence axis, or
/// an empty tensor of the slot's shape when there is no value.
fn truncated_or_empty(value: Option<&DynValue>, slot: &KvSlot, n: usize) -> ort::Result<DynValue> {
    match slot.ty {
        TensorElementType::Float16 => cut::<f16>(value, slot, n),
        TensorElementType::Bfloat16 => cut::<bf16>(value, slot, n),
        _ => cut::<f32>(value, slot, n),
    }
}

fn cut<T: PrimitiveTensorElementType + Copy + std::fmt::Debug + 'static>(
    value: Option<&DynValue>,
    slot: &KvSlot,
    n: usize,
) -> ort::Result<DynValue> {
    let Some(value) = value else {
        return Ok(
            Tensor::<T>::from_array((slot.empty_shape.clone(), Vec::<T>::new()))?.into_dyn(),
        );
    };
    let (shape, data) = value.try_extract_tensor::<T>()?;
    let dims: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
    let axis = slot.seq_axis;
    let outer: usize = dims[..axis].iter().product();
    let inner: usize = dims[axis + 1..].iter().product();
    let old = dims[axis];
    let n = n.min(old);
    let mut out = Vec::with_capacity(outer * n * inner);
    for o in 0..outer {
        let start = o * old * inner;
        out.extend_from_slice(&data[start..start + n * inner]);
    }
    let mut new_shape: Vec<i64> = shape.to_vec();
    new_shape[axis] = n as i64;
    Ok(Tensor::<T>::from_array((new_shape, out))?.into_dyn())
}

/// Recent caches, bounded by count and bytes, looked up by the longest
/// common token prefix with a new prompt.
pub(crate) struct PrefixCache {
    entries: VecDeque<KvCache>,
    max_entries: usize,
    max_bytes: usize,
    bytes_per_token: usize,
}

impl PrefixCache {
    pub fn new(max_entries: usize, max_bytes: usize, bytes_per_token: usize) -> Self {
        Self {
            entries: VecDeque::new(),
            max_entries,
            max_bytes,
            bytes_per_token,
        }
    }

    /// Removes and returns the entry sharing the longest prefix with
    /// `prompt`, with that prefix's length. Nothing when no entry shares a token.
    pub fn take_best(&mut self, prompt: &[u32]) -> Option<(KvCache, usize)> {
        let (index, shared) = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| (i, common_prefix(&e.tokens, prompt)))
            .max_by_key(|&(i, shared)| (shared, i))?;
        if shared == 0 {
            return None;
        }
        self.entries.remove(index).map(|e| (e, shared))
    }

    /// Keeps `cache` as the newest entry, dropping the oldest over the bounds.
    pub fn put(&mut self, cache: KvCache) {
        if cache.tokens.is_empty() || self.max_entries == 0 {
            return;
        }
        // An entry that is a prefix of the new one adds nothing.
        self.entries
            .retain(|e| !cache.tokens.starts_with(&e.tokens));
        self.entries.push_back(cache);
        while self.entries.len() > self.max_entries
            || (self.entries.len() > 1
                && self
                    .entries
                    .iter()
                    .map(|e| e.footprint() * self.bytes_per_token)
                    .sum::<usize>()
                    > self.max_bytes)
        {
            self.entries.pop_front();
        }
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

pub(crate) fn common_prefix(a: &[u32], b: &[u32]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_prefix_counts_shared_tokens() {
        assert_eq!(common_prefix(&[1, 2, 3], &[1, 2, 4]), 2);
        assert_eq!(common_prefix(&[], &[1]), 0);
        assert_eq!(common_prefix(&[1, 2], &[1, 2, 3]), 2);
    }
}
