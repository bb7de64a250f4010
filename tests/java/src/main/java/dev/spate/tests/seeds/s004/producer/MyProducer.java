package dev.spate.tests.seeds.s004.producer;

// Seed 004_ed286137ca3470b0.txt, "3. Producer 生产者部分" (package com.houzhenguo.producer there),
// as written. Changes: the bootstrap address and the topic come from args[0] and args[1] (the
// seed has "外网ip:9092" and "replicated-topic-test").
import org.apache.kafka.clients.producer.*;
import java.util.Properties;
public class MyProducer {
    public static void main(String[] args) {
        //  建立链接相关的操作
        Properties props = new Properties();
        // 1.kafka集群，broker-list,这里使用 常量方式 bootstrap.servers多个用，分割
        props.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        // 2. 设置 ack,"acks"
        props.put(ProducerConfig.ACKS_CONFIG, "all");
        // 3. 重试次数
        props.put("retries", 1);
        // 4. 批次大小 满16k就发送
        props.put("batch.size", 16384);
        // 5. 等待时间 ，等待 1ms也发送
        props.put("linger.ms", 1);
        // 6. RecordAccumulator 缓冲区大小
        props.put("buffer.memory", 33554432);
        // 7. 设置序列化器
        props.put("key.serializer",
                "org.apache.kafka.common.serialization.StringSerializer");
        props.put("value.serializer",
                "org.apache.kafka.common.serialization.StringSerializer");

        // 8. 构建生产者
        Producer<String, String> producer = new KafkaProducer<String, String>(props);
        // 9. 构造数据发送数据
        for (int i=0; i<10;i++) {
            producer.send(new ProducerRecord<String, String>(args[1],
                    Integer.toString(i), Integer.toString(i)), new Callback() { // 回调函数
                public void onCompletion(RecordMetadata recordMetadata, Exception e) {
                    if (e == null) {
                        System.out.println("success");
                    }else {
                        e.printStackTrace();
                    }
                }
            });
        }
        // 10. 注意关闭，否则可能发送到 broker就关闭了
        producer.close();
        // 备注
        // ./bin/kafka-topics.sh --list --bootstrap-server localhost:9092 查看 topic
        // ./bin/kafka-topics.sh --describe --bootstrap-server localhost:9092 --topic replicated-topic-test
        // ./bin/kafka-console-consumer.sh --bootstrap-server localhost:9092 --from-beginning --topic replicated-topic-test
    }
}
