package dev.spate.tests.seeds.s000.autocommit;

// Seed 000_0cefd7d9b9e13ee0.txt, "自动提交offset的代码" (the consumer with auto commit), as written.
// Changes: the bootstrap address and the topic come from args[0] and args[1] (the seed has
// "hadoop102:9092" and "first"); poll(100) is poll(Duration.ofMillis(100)) because
// kafka-clients 4.0 removed poll(long) (the seed was written for 2.4.1); the endless loop ends
// when the checks ask (see Stop) and the consumer is then closed.
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;

import dev.spate.tests.seeds.Stop;

import java.time.Duration;
import java.util.Arrays;
import java.util.Properties;

public class CustomConsumer {

    public static void main(String[] args) {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("group.id", "test");
        props.put("enable.auto.commit", "true");
        props.put("auto.commit.interval.ms", "1000");
        props.put("key.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        props.put("value.deserializer", "org.apache.kafka.common.serialization.StringDeserializer");
        KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props);
        consumer.subscribe(Arrays.asList(args[1]));
        while (!Stop.requested()) {
            ConsumerRecords<String, String> records = consumer.poll(Duration.ofMillis(100));
            for (ConsumerRecord<String, String> record : records)
                System.out.printf("offset = %d, key = %s, value = %s%n", record.offset(), record.key(), record.value());
        }
        consumer.close();
    }
}
