use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "bert", class = "BertForMaskedLM")]
struct BertForMaskedLM;

fn main() {}
