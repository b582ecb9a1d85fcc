use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(config = true, model_type = bert)]
struct BertConfig;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task, class = "Bert For Masked LM")]
struct BertForMaskedLM;

fn main() {}
