//! Walking ahead: the items of a folder walked in order, while idle threads of the pool walk the
//! next ones and keep what they learn for the walk to take in its turn.
//!
//! A walk is one system call after another, each waiting on the disk when it is cold; one folder
//! can hold most of a store (`library/` of a mirror), so shards alone leave the disk idle. Here
//! each item is walked once, by whichever thread claims it first: the walk itself when it gets
//! there before any helper, or a helper, whose entries and notes the walk then visits in the
//! item's place. What is visited, and in what order, does not change.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

/// How many items after the walk's are offered to helpers at once.
const AHEAD: usize = 32;

/// Items are walked in rounds of this many, so that a folder of any width holds this many slots
/// at a time.
const ROUND: usize = 1024;

/// The most entries and notes a helper keeps for one item. Past it the helper hands the item back
/// and stops: the walk walks it itself, with helpers of its own inside it, so that an item as large
/// as a store costs a little more than its walk, not its listing in memory.
const BUDGET: usize = 512;

/// The most entries and notes all helpers of the process keep at once: past it a helper hands its
/// item back. It bounds what walking ahead adds to a run's memory (a few hundred bytes an entry)
/// whatever the store's shape and however many walks run at once.
const HELD_AT_MOST: usize = 4096;

/// How many entries and notes helpers keep now.
static HELD: AtomicUsize = AtomicUsize::new(0);

/// Held by the tests that walk ahead, so that one can tell what [`HELD`] is once its walk is done.
#[cfg(test)]
pub(super) static HELD_BY_TESTS: Mutex<()> = Mutex::new(());

/// What a helper learned of an item, counted in [`HELD`] until dropped.
#[derive(Default)]
pub(super) struct Held(Vec<Learned>);

impl Drop for Held {
    fn drop(&mut self) {
        HELD.fetch_sub(self.0.len(), Ordering::Relaxed);
    }
}

/// What a helper learned of an item, in the order it learned it.
pub(super) enum Learned {
    Entry(Entry),
    Note(ListingNote),
}

/// What the walk does with an item in its turn.
pub(super) enum Turn<'i, T> {
    /// Walk it: no helper has it.
    Walk(&'i T),
    /// Visit what a helper learned of it.
    Learned(Held),
}

/// Where a helper keeps what it learns of its item.
pub(super) struct Keep<'s> {
    slot: &'s Slot,
    learned: Held,
}

impl<'s> Keep<'s> {
    /// Keeps one thing learned, or drops it once the item was handed back.
    pub(super) fn keep(&mut self, learned: Learned) {
        if self.slot.handed_back() {
            return;
        }
        let room = self.learned.0.len() < BUDGET
            && (HELD.fetch_add(1, Ordering::Relaxed) < HELD_AT_MOST || {
                HELD.fetch_sub(1, Ordering::Relaxed);
                false
            });
        if !room {
            self.learned = Held::default();
            return self.slot.hand_back();
        }
        self.learned.0.push(learned);
    }

    /// The item's slot, which the helper's walk asks whether to go on and hands the item back
    /// through.
    pub(super) fn slot(&self) -> &'s Slot {
        self.slot
    }
}

/// Visits what a helper learned, in its order.
pub(super) fn replay(
    mut learned: Held,
    visit: &mut dyn FnMut(Entry),
    note: &mut dyn FnMut(ListingNote),
) {
    let items = std::mem::take(&mut learned.0);
    HELD.fetch_sub(items.len(), Ordering::Relaxed);
    for l in items {
        match l {
            Learned::Entry(e) => visit(e),
            Learned::Note(n) => note(n),
        }
    }
}

#[derive(Default)]
pub(super) struct Slot {
    claimed: AtomicBool,
    handed_back: AtomicBool,
    /// `Some(Some(_))`: learned whole; `Some(None)`: handed back.
    done: Mutex<Option<Option<Held>>>,
    ready: Condvar,
}

impl Slot {
    /// Whether the item was handed back: the helper's walk has nothing more to do.
    pub(super) fn handed_back(&self) -> bool {
        self.handed_back.load(Ordering::Relaxed)
    }

    /// Gives the item back for the walk to walk itself; what the helper learns after is dropped.
    pub(super) fn hand_back(&self) {
        if !self.handed_back.swap(true, Ordering::AcqRel) {
            self.finish(None);
        }
    }

    /// Whether a folder of `children` is more than a helper keeps: it hands its item back rather
    /// than read such a folder.
    pub(super) fn too_many(children: usize) -> bool {
        children > BUDGET
    }

    fn claim(&self) -> bool {
        !self.claimed.swap(true, Ordering::AcqRel)
    }

    fn finish(&self, learned: Option<Held>) {
        *self.done.lock().unwrap_or_else(PoisonError::into_inner) = Some(learned);
        self.ready.notify_one();
    }

    fn wait(&self) -> Option<Held> {
        let mut done = self.done.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(learned) = done.take() {
                return learned;
            }
            done = self
                .ready
                .wait(done)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// Takes `items` in order, each in its [`Turn`] through `turn`, while helpers of the pool
/// `walk_ahead` the items up to [`AHEAD`] after it that cost the disk something (`worth`, one flag
/// an item). `turn` ending with an error ends the walk (helpers not started then do nothing).
pub(super) fn in_order<T: Sync, E>(
    items: &[T],
    worth: &[bool],
    walk_ahead: &(dyn Fn(&T, &mut Keep<'_>) + Sync),
    mut turn: impl FnMut(Turn<'_, T>) -> Result<(), E>,
) -> Result<(), E> {
    assert_eq!(items.len(), worth.len(), "one flag an item");
    for (round, worth) in items.chunks(ROUND).zip(worth.chunks(ROUND)) {
        let slots: Vec<Slot> = round.iter().map(|_| Slot::default()).collect();
        let slots = &slots;
        let walked = rayon::in_place_scope(|s| {
            let offer = |i: usize| {
                if !worth[i] {
                    return;
                }
                let item = &round[i];
                s.spawn(move |_| {
                    let slot = &slots[i];
                    if !slot.claim() {
                        return;
                    }
                    let mut keep = Keep {
                        slot,
                        learned: Held::default(),
                    };
                    walk_ahead(item, &mut keep);
                    if !slot.handed_back() {
                        slot.finish(Some(keep.learned));
                    }
                })
            };
            (0..AHEAD.min(round.len())).for_each(offer);
            for (i, item) in round.iter().enumerate() {
                if i + AHEAD < round.len() {
                    offer(i + AHEAD);
                }
                let step = if !worth[i] || slots[i].claim() {
                    Turn::Walk(item)
                } else {
                    match slots[i].wait() {
                        Some(learned) => Turn::Learned(learned),
                        None => Turn::Walk(item),
                    }
                };
                if let Err(e) = turn(step) {
                    // Helpers not started yet find their items claimed and do nothing.
                    slots.iter().for_each(|s| {
                        s.claim();
                    });
                    return Err(e);
                }
            }
            Ok(())
        });
        walked?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(key: String) -> Learned {
        Learned::Entry(Entry {
            key,
            size: 0,
            modified: None,
            etag: None,
            content: None,
        })
    }

    /// What item `i` yields: a few entries, none, or more than a helper keeps.
    fn yields(i: usize) -> usize {
        match i % 7 {
            0 => 0,
            3 => BUDGET + 5,
            _ => i % 5 + 1,
        }
    }

    #[test]
    fn items_come_in_order_each_once_whoever_walks_them() {
        let _alone = HELD_BY_TESTS.lock().unwrap_or_else(PoisonError::into_inner);
        let items: Vec<usize> = (0..3 * ROUND + 17).collect();
        let worth: Vec<bool> = items.iter().map(|&i| i % 11 != 4).collect();
        let walk = |&i: &usize, out: &mut dyn FnMut(Learned)| {
            for k in 0..yields(i) {
                out(entry(format!("{i}/{k}")));
            }
        };
        let walk_ahead = |i: &usize, keep: &mut Keep<'_>| walk(i, &mut |l| keep.keep(l));
        let mut got = Vec::new();
        let (mut walked, mut replayed) = (0, 0);
        in_order(&items, &worth, &walk_ahead, |turn| {
            match turn {
                Turn::Walk(i) => {
                    walked += 1;
                    walk(i, &mut |l| {
                        if let Learned::Entry(e) = l {
                            got.push(e.key)
                        }
                    })
                }
                Turn::Learned(learned) => {
                    replayed += 1;
                    replay(learned, &mut |e| got.push(e.key), &mut |_| {});
                }
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        let want: Vec<String> = (items.iter())
            .flat_map(|&i| (0..yields(i)).map(move |k| format!("{i}/{k}")))
            .collect();
        assert_eq!(got, want);
        assert_eq!(walked + replayed, items.len());
        assert_eq!(
            HELD.load(Ordering::Relaxed),
            0,
            "nothing is held after the walk"
        );
    }

    #[test]
    fn an_error_ends_the_walk_at_its_item() {
        let _alone = HELD_BY_TESTS.lock().unwrap_or_else(PoisonError::into_inner);
        let items: Vec<usize> = (0..500).collect();
        let walk_ahead = |i: &usize, keep: &mut Keep<'_>| keep.keep(entry(i.to_string()));
        let mut seen = 0;
        let got = in_order(&items, &[true; 500], &walk_ahead, |_| {
            seen += 1;
            if seen == 100 { Err(seen) } else { Ok(()) }
        });
        assert_eq!(got, Err(100));
        assert_eq!(seen, 100);
    }
}
