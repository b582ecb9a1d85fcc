use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(model_type = "bert", task = "masked-lm")]
struct BertForMaskedLM<B: Clone> {
    backbone: B,
}

#[derive(AutoRegister)]
#[auto(config, model_type = "bert")]
struct BertConfig<'a> {
    name: &'a str,
}

fn main() {}
