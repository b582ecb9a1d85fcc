use autocandle_core::AutoRegister;

#[derive(AutoRegister)]
#[auto(config, model_type = "bert")]
enum BertConfig {
    Base,
    Large,
}

fn main() {}
