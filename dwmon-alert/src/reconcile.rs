//! [`reconcile`]: alert states follow their requirement lines, not the line positions.
//!
//! States are stored per (checker, requirement index). When a checker's lines change, each
//! line's state is found by the line's identity — its `ALERTKEY`, else its canonical text —
//! and moved to the line's new index, so inserting, removing or reordering lines sends no
//! false `Resolved` and no second `Firing`. A line whose identity matches no state but that
//! sits at the index of a state whose line is gone was edited in place and keeps that state
//! (as before). An open incident keeps the key it was opened with
//! ([`AlertState::incident_key`]). States of lines that disappeared are left at indices the
//! following [`AlertStateStore::prune`] forgets.

use crate::policy::alert_key;
use crate::state::AlertState;
use crate::store::{AlertStateStore, AlertStoreError, AlertUpdate, DecidedFrom};
use std::collections::BTreeMap;

/// What identifies a requirement line across edits: `key:<ALERTKEY>` or its canonical text.
pub fn line_identity(requirement: &str) -> String {
    match alert_key(requirement) {
        Some(key) => format!("key:{key}"),
        None => requirement.to_string(),
    }
}

/// Moves the alert states of the checkers in `lines` (checker name -> canonical text of each
/// requirement line, by index) to the indices of their lines. Checkers whose lines did not
/// move are not written. Returns how many states were written.
///
/// ```
/// use std::collections::BTreeMap;
/// use dwmon_alert::{reconcile, AlertState, AlertStateStore, AlertUpdate, MemoryAlertStore};
/// # futures::executor::block_on(async {
/// let store = MemoryAlertStore::new();
/// let firing = AlertState {
///     announced: true,
///     requirement: Some("A".into()),
///     incident_key: Some("orders/0".into()),
///     ..AlertState::default()
/// };
/// store.apply(&AlertUpdate { checker: "orders".into(), alert: Some((0, firing.clone())), ..AlertUpdate::default() }).await?;
/// // A line "B" was added above "A".
/// let lines = BTreeMap::from([("orders".to_string(), vec!["B".to_string(), "A".to_string()])]);
/// assert_eq!(reconcile(&store, &lines).await?, 2);
/// assert_eq!(store.alert_state("orders", 1).await?, Some(firing));
/// assert!(!store.alert_state("orders", 0).await?.is_some_and(|s| s.announced));
/// # Ok::<(), dwmon_alert::AlertStoreError>(())
/// # }).unwrap();
/// ```
///
/// # Errors
/// The store's; states written before the failure stay written (a later reconcile
/// completes the move: it only looks at identities).
pub async fn reconcile(
    store: &dyn AlertStateStore,
    lines: &BTreeMap<String, Vec<String>>,
) -> Result<u64, AlertStoreError> {
    let overview = store.overview().await?;
    let mut old: BTreeMap<&str, BTreeMap<usize, AlertState>> = BTreeMap::new();
    for entry in &overview.alerts {
        if lines.contains_key(&entry.checker) {
            old.entry(entry.checker.as_str())
                .or_default()
                .insert(entry.requirement_index, entry.state.clone());
        }
    }
    let mut written = 0;
    for (checker, states) in old {
        let Some(texts) = lines.get(checker) else {
            continue;
        };
        for (index, state) in placement(checker, &states, texts) {
            let unchanged = match states.get(&index) {
                Some(before) => before == &state,
                // A line without a state gets one with its first check.
                None => {
                    AlertState {
                        requirement: None,
                        ..state.clone()
                    } == AlertState::default()
                }
            };
            if unchanged {
                continue;
            }
            let update = AlertUpdate {
                checker: checker.to_string(),
                alert: Some((index, state)),
                ..AlertUpdate::default()
            };
            // Only over the state this placement was read with: another runner that judged
            // the line meanwhile (finding its state by identity) or moved it already wins.
            let decided_from = DecidedFrom {
                alert: Some((index, states.get(&index).cloned())),
                source: None,
            };
            if store.apply_if_unchanged(&update, &decided_from).await? {
                written += 1;
            }
        }
    }
    Ok(written)
}

/// The state each line index should hold: by identity first, then (a line edited in place)
/// the state at its own index if that state's line is gone; else a fresh state.
fn placement(
    checker: &str,
    old: &BTreeMap<usize, AlertState>,
    texts: &[String],
) -> BTreeMap<usize, AlertState> {
    let identities: Vec<String> = texts.iter().map(|t| line_identity(t)).collect();
    let old_identity = |state: &AlertState| state.requirement.as_deref().map(line_identity);
    let mut taken: Vec<usize> = Vec::new();
    let mut chosen: BTreeMap<usize, usize> = BTreeMap::new();
    // 1. Same identity (an ALERTKEY, or the same canonical text). The state already at the
    //    line's index wins a tie, so unmoved lines keep their states.
    for (index, identity) in identities.iter().enumerate() {
        let at_home = old
            .get(&index)
            .filter(|s| old_identity(s).as_ref() == Some(identity))
            .map(|_| index);
        let found = at_home.or_else(|| {
            old.iter()
                .find(|(j, s)| !taken.contains(j) && old_identity(s).as_ref() == Some(identity))
                .map(|(j, _)| *j)
        });
        if let Some(j) = found.filter(|j| !taken.contains(j)) {
            taken.push(j);
            chosen.insert(index, j);
        }
    }
    // 2. Edited in place: the state at the line's index, unless its line still exists
    //    elsewhere (then it was taken above) — also every state saved without its text.
    for index in 0..texts.len() {
        if chosen.contains_key(&index) || taken.contains(&index) {
            continue;
        }
        if let Some(state) = old.get(&index) {
            let line_gone = old_identity(state).is_none_or(|id| !identities.contains(&id));
            if line_gone {
                taken.push(index);
                chosen.insert(index, index);
            }
        }
    }
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            let mut state = chosen
                .get(&index)
                .and_then(|j| old.get(j))
                .cloned()
                .unwrap_or_default();
            if let (true, None) = (state.announced, &state.incident_key) {
                // Saved before incident keys were kept: it was opened at its old index.
                let j = chosen.get(&index).copied().unwrap_or(index);
                state.incident_key = Some(format!("{checker}/{j}"));
            }
            state.requirement = Some(text.clone());
            (index, state)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firing(text: &str, key: &str) -> AlertState {
        AlertState {
            announced: true,
            requirement: Some(text.to_string()),
            incident_key: Some(key.to_string()),
            ..AlertState::default()
        }
    }

    fn texts(lines: &[&str]) -> Vec<String> {
        lines.iter().map(|l| l.to_string()).collect()
    }

    #[test]
    fn states_follow_their_lines() {
        let old = BTreeMap::from([(0, firing("A", "c/0")), (1, firing("B", "c/1"))]);
        // Reordered with a line added: each state follows its text.
        let placed = placement("c", &old, &texts(&["B", "N", "A"]));
        assert_eq!(placed[&0].incident_key.as_deref(), Some("c/1"));
        assert!(!placed[&1].announced, "a new line starts fresh");
        assert_eq!(placed[&2].incident_key.as_deref(), Some("c/0"));
        // The line above removed: B moves up; A's state is left to prune.
        let placed = placement("c", &old, &texts(&["B"]));
        assert_eq!(placed.len(), 1);
        assert_eq!(placed[&0].incident_key.as_deref(), Some("c/1"));
    }

    #[test]
    fn a_line_edited_in_place_keeps_its_state_and_keys_win_over_text() {
        let old = BTreeMap::from([
            (0, firing("A", "c/0")),
            (1, firing("K1 ALERTKEYpay", "c/pay")),
        ]);
        // The keyed line edited and moved up, A edited and moved down: the key follows, A
        // (neither its text nor its place left) starts fresh.
        let placed = placement("c", &old, &texts(&["K2 ALERTKEYpay", "A2"]));
        assert_eq!(placed[&0].incident_key.as_deref(), Some("c/pay"));
        assert_eq!(placed[&0].requirement.as_deref(), Some("K2 ALERTKEYpay"));
        assert!(!placed[&1].announced);
        // Both edited in place: each keeps the state of its position.
        let placed = placement("c", &old, &texts(&["A2", "K2 ALERTKEYpay"]));
        assert_eq!(
            placed[&0].incident_key.as_deref(),
            Some("c/0"),
            "A edited in place"
        );
        assert_eq!(placed[&1].incident_key.as_deref(), Some("c/pay"));
        // Lines that did not move are not rewritten.
        let same = placement("c", &old, &texts(&["A", "K1 ALERTKEYpay"]));
        assert_eq!(same, old);
    }
}
