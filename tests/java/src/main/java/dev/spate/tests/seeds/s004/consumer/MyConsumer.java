package dev.spate.tests.seeds.s004.consumer;

// Seed 004_ed286137ca3470b0.txt, "5. 消费者" (package com.houzhenguo.consumer there), as written.
// Changes: the bootstrap address and the topic come from args[0] and args[1] (the seed has
// "外网ip:9092" and "replicated-topic-test"); poll(100) is poll(Duration.ofMillis(100)) because
// kafka-clients 4.0 removed poll(long); the endless loop ends when the checks ask (see Stop)
// and the consumer is then closed.
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;

import dev.spate.tests.seeds.Stop;

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;
public class MyConsumer {
    public static void main(String[] args) {
        // 1. 创建消费者配置信息
        Properties prop = new Properties();
        // 2. 给配置信息赋值 bootstrap.servers
        prop.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        // 3. 配置自动提交
        prop.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true);
        // 4. 配置自动提交延迟 offset auto.commit.interval.ms
        prop.put(ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, "1000");
        // 5. key,value 的反序列化
        prop.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.StringDeserializer");
        prop.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, "org.apache.kafka.common.serialization.StringDeserializer");
        // 6. 消费者组
        prop.put(ConsumerConfig.GROUP_ID_CONFIG, "bigdata");
        // 6.1 新加配置 解决 偏移量 有可能因为删除不存在,从头开始，或者从最新的开始,默认 latest
        prop.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // 7. 创建消费者
        KafkaConsumer<String, String> consumer = new KafkaConsumer<String, String>(prop);
        // 8. 订阅主题
        consumer.subscribe(Arrays.asList(args[1]));
        // 9. 获取数据
        while (!Stop.requested()) {
            ConsumerRecords<String, String> consumerRecords = consumer.poll(Duration.ofMillis(100));
            // 10. 解析并打印 consumerRecords
            for (ConsumerRecord<String, String> record: consumerRecords) {
                System.out.println("key "+record.key()+"—"+record.value());
            }
        }
        consumer.close();
    }
}
