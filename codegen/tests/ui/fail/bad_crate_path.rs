use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(task = "masked-lm", crate = "not a path")]
struct BertForMaskedLM;

#[derive(AutoRegister)]
#[auto(task = "masked-lm", crate = autocandle::core)]
struct RobertaForMaskedLM;

fn main() {}
