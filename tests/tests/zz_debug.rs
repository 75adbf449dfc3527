use ankh_tests::run_os;
#[test]
fn dbg1() {
    let ran = run_os(&["flood", "suite"]);
    for l in &ran.lines {
        eprintln!("{l:?}");
    }
    eprintln!("{:?}", ran.report.recoveries);
    eprintln!("{:?}", ran.report.stop);
    for d in &ran.report.domains {
        if d.id < 8 {
            eprintln!("{} {:?}", d.name, d.end);
        }
    }
    panic!("x");
}
#[test]
fn dbg2() {
    let ran = run_os(&["suite"]);
    assert!(!ran.lines_of("suite").is_empty());
}
#[test]
fn dbg3() {
    let ran = run_os(&["suite"]);
    assert!(!ran.lines_of("suite").is_empty());
}
