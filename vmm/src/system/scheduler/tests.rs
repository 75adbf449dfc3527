//! The turns of one thread: direct switches inherit the turn, every domain a step
//! wakes alike; once the turn is over, what it woke waits behind the others.

use std::time::{Duration, Instant};

use super::{Turns, QUANTUM};

/// One thread with domains 1, 2 and 3 ready in this order, and 4 and 5 placed on it
/// (not ready).
fn three() -> Turns {
    let mut turns = Turns::new(1, [(1, 0), (2, 0), (3, 0)]);
    turns.place(4, 0);
    turns.place(5, 0);
    turns
}

/// Runs the next domain and says it is done with it.
fn run_next(turns: &mut Turns) -> (u32, Instant) {
    let (id, ends) = turns.next_ready(0).expect("a domain is ready");
    turns.end_work();
    (id, ends)
}

#[test]
fn a_domain_woken_in_a_turn_runs_first_and_inherits_it() {
    let mut turns = three();
    let (first, ends) = run_next(&mut turns);
    assert_eq!(first, 1);
    turns.schedule(&[4], 0, ends - QUANTUM);
    assert_eq!(run_next(&mut turns), (4, ends));
}

#[test]
fn every_domain_one_step_wakes_inherits_the_turn() {
    let mut turns = three();
    let (_, ends) = run_next(&mut turns);
    let during = ends - QUANTUM;
    // Two wake-ups in one step (say a reply and a notice), as two calls.
    turns.schedule(&[4], 0, during);
    turns.schedule(&[5], 0, during);
    assert_eq!(run_next(&mut turns), (5, ends));
    assert_eq!(run_next(&mut turns), (4, ends));
    // Then the others, each with a turn of its own.
    let (next, later) = run_next(&mut turns);
    assert_eq!(next, 2);
    assert!(later >= ends);
}

#[test]
fn what_a_turn_woke_waits_behind_the_others_once_it_is_over() {
    let mut turns = three();
    let (_, ends) = run_next(&mut turns);
    turns.schedule(&[4], 0, ends - QUANTUM);
    // The turn ends before 4 runs; what is woken now goes to the back.
    turns.schedule(&[5], 0, ends + Duration::from_millis(1));
    let order: Vec<u32> = (0..4).map(|_| run_next(&mut turns).0).collect();
    assert_eq!(order, [2, 3, 5, 4]);
}

#[test]
fn with_nobody_else_ready_what_a_turn_woke_shares_a_new_one() {
    let mut turns = Turns::new(1, [(1, 0)]);
    turns.place(4, 0);
    turns.place(5, 0);
    let (_, ends) = run_next(&mut turns);
    turns.schedule(&[4, 5], 0, ends - QUANTUM);
    turns.schedule(&[], 0, ends + Duration::from_millis(1));
    let (four, new_ends) = run_next(&mut turns);
    assert_eq!(four, 4);
    assert!(new_ends > ends);
    assert_eq!(run_next(&mut turns), (5, new_ends));
}

#[test]
fn a_preempted_domain_waits_behind_the_others_and_alone_starts_a_new_turn() {
    let mut turns = Turns::new(1, [(1, 0), (2, 0)]);
    let (one, ends) = turns.next_ready(0).unwrap();
    assert_eq!(one, 1);
    let after = ends + Duration::from_millis(1);
    assert_eq!(turns.turn_over(0, 1, after), None);
    turns.end_work();
    assert_eq!(run_next(&mut turns).0, 2);
    let (again, _) = turns.next_ready(0).unwrap();
    assert_eq!(again, 1);
    // Nobody else ready: it runs on in a new turn.
    let later = after + QUANTUM;
    assert_eq!(turns.turn_over(0, 1, later), Some(later + QUANTUM));
}
